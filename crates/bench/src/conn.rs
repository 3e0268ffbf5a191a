//! Client sockets. Each is bound to a source address 127.0.0.x before it connects, so the
//! ~28k ephemeral ports of one (source, destination) pair do not cap a run; client
//! WebSocket buffers are small so the generator fits beside the server.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<TcpStream>;

/// Raises this process's soft fd limit to its hard limit; returns the effective limit.
pub fn raise_fd_limit() -> u64 {
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap_or((1024, 1024));
    rlimit::increase_nofile_limit(hard).unwrap_or(1024)
}

/// Which source address the `n`-th socket of a generator process uses.
#[derive(Clone, Copy, Debug)]
pub struct Sources {
    /// Last octet of the first address (generator `i` starts at `2 + 8 i`).
    pub first: u8,
    pub per_source: usize,
}

impl Sources {
    pub fn for_worker(index: usize, per_source: usize) -> Sources {
        Sources {
            first: (2 + 8 * index).min(250) as u8,
            per_source: per_source.max(1),
        }
    }

    pub fn addr(&self, n: usize) -> Ipv4Addr {
        let octet = (self.first as usize + n / self.per_source).min(254) as u8;
        Ipv4Addr::new(127, 0, 0, octet)
    }
}

/// Microseconds since the Unix epoch: events carry it between processes on this machine.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(4096)
        .max_write_buffer_size(1 << 20)
}

/// Longest a connection attempt (TCP and upgrade) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens a WebSocket to `server` (`host:port`) at `path` from `source`.
pub async fn connect(server: SocketAddr, source: Ipv4Addr, path: &str) -> anyhow::Result<Ws> {
    tokio::time::timeout(CONNECT_TIMEOUT, connect_now(server, source, path))
        .await
        .map_err(|_| anyhow::anyhow!("no connection within {CONNECT_TIMEOUT:?}"))?
}

async fn connect_now(server: SocketAddr, source: Ipv4Addr, path: &str) -> anyhow::Result<Ws> {
    let socket = TcpSocket::new_v4()?;
    // A churned socket's port may still be in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::V4(SocketAddrV4::new(source, 0)))?;
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    let url = format!("ws://{server}{path}");
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(url.as_str(), stream, Some(config())).await?;
    Ok(ws)
}

/// Waits for the first text frame (the server's `hello`).
pub async fn first_text(ws: &mut Ws, timeout: Duration) -> anyhow::Result<String> {
    let wait = async {
        while let Some(msg) = ws.next().await {
            if let Message::Text(t) = msg? {
                return Ok(t.as_str().to_owned());
            }
        }
        anyhow::bail!("closed before the first frame")
    };
    tokio::time::timeout(timeout, wait)
        .await
        .map_err(|_| anyhow::anyhow!("no first frame within {timeout:?}"))?
}

/// Query-string escaping for room names and session ids.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The room socket path of seed 0.
pub fn room_path(room: &str, sid: &str) -> String {
    format!(
        "/v1/ws?room={}&socket_session_id={}",
        escape(room),
        escape(sid)
    )
}
