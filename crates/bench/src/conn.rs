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

/// A WebSocket read without a WebSocket library: the fan-out members use it so that reading a
/// million frames a second costs the generator little beside the server it measures (server
/// frames are unmasked and small: a header scan per frame, many frames per read).
pub struct RawWs {
    pub stream: TcpStream,
    /// Bytes read and not yet parsed.
    pub buf: bytes::BytesMut,
}

/// One server-to-client frame at the start of a buffer.
pub struct RawFrame {
    pub opcode: u8,
    pub payload: std::ops::Range<usize>,
    /// Header plus payload: what to consume.
    pub len: usize,
}

pub const OP_TEXT: u8 = 1;
pub const OP_CLOSE: u8 = 8;

impl RawWs {
    /// The complete frame at the start of `buf`, if one has arrived.
    pub fn frame(buf: &[u8]) -> Option<RawFrame> {
        let (&b0, &b1) = (buf.first()?, buf.get(1)?);
        let (len, header) = match b1 & 0x7f {
            126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 4),
            127 => {
                let bytes: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
                (u64::from_be_bytes(bytes) as usize, 10)
            }
            n => (n as usize, 2),
        };
        // Servers never mask; a mask key would follow the length.
        let header: usize = if b1 & 0x80 != 0 { header + 4 } else { header };
        let end = header.checked_add(len)?;
        if buf.len() < end {
            return None;
        }
        Some(RawFrame {
            opcode: b0 & 0x0f,
            payload: header..end,
            len: end,
        })
    }

    /// A masked client text frame (clients must mask; the key need not be secret here).
    pub fn text_frame(text: &str) -> Vec<u8> {
        client_frame(OP_TEXT, text.as_bytes())
    }
}

/// A masked, final client frame of `opcode` (text 1, close 8, ping 9, pong 10).
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= u16::MAX as usize => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&KEY);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    out
}

/// Opens a raw WebSocket (the HTTP upgrade by hand) and waits for the first text frame.
pub async fn connect_raw(
    server: SocketAddr,
    source: Ipv4Addr,
    path: &str,
) -> anyhow::Result<RawWs> {
    Ok(connect_raw_hello(server, source, path).await?.0)
}

/// [`connect_raw`], also returning the first text frame (a Pusher server's
/// `pusher:connection_established`, which carries the socket id).
pub async fn connect_raw_hello(
    server: SocketAddr,
    source: Ipv4Addr,
    path: &str,
) -> anyhow::Result<(RawWs, String)> {
    tokio::time::timeout(CONNECT_TIMEOUT, connect_raw_now(server, source, path))
        .await
        .map_err(|_| anyhow::anyhow!("no connection within {CONNECT_TIMEOUT:?}"))?
}

async fn connect_raw_now(
    server: SocketAddr,
    source: Ipv4Addr,
    path: &str,
) -> anyhow::Result<(RawWs, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::V4(SocketAddrV4::new(source, 0)))?;
    let mut stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {server}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut buf = bytes::BytesMut::with_capacity(64 * 1024);
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if stream.read_buf(&mut buf).await? == 0 {
            anyhow::bail!("closed during the upgrade");
        }
        if buf.len() > 8192 {
            anyhow::bail!("upgrade response too long");
        }
    };
    if !buf.starts_with(b"HTTP/1.1 101") {
        let line = String::from_utf8_lossy(&buf[..head_end.min(80)]).into_owned();
        anyhow::bail!("upgrade refused: {line}");
    }
    let _ = buf.split_to(head_end);
    // The server's hello.
    let hello = loop {
        if let Some(f) = RawWs::frame(&buf) {
            let frame = buf.split_to(f.len);
            if f.opcode == OP_TEXT {
                break String::from_utf8_lossy(&frame[f.payload]).into_owned();
            }
            if f.opcode == OP_CLOSE {
                anyhow::bail!("closed before the first frame");
            }
            continue;
        }
        if stream.read_buf(&mut buf).await? == 0 {
            anyhow::bail!("closed before the first frame");
        }
    };
    Ok((RawWs { stream, buf }, hello))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_frames_of_every_length_encoding() {
        let mut buf = vec![0x81, 3, b'a', b'b', b'c'];
        let f = RawWs::frame(&buf).expect("complete");
        assert_eq!((f.opcode, f.payload.clone(), f.len), (OP_TEXT, 2..5, 5));
        buf.truncate(4);
        assert!(RawWs::frame(&buf).is_none(), "incomplete");
        let mut long = vec![0x81, 126, 0x01, 0x00];
        long.extend(std::iter::repeat_n(b'x', 256));
        let f = RawWs::frame(&long).expect("complete");
        assert_eq!((f.payload.start, f.len), (4, 260));
        assert!(RawWs::frame(&[0x88]).is_none());
    }

    #[test]
    fn masks_client_frames() {
        let f = RawWs::text_frame(r#"{"type":"hb"}"#);
        assert_eq!(f[0], 0x81);
        assert_eq!(f[1], 0x80 | 13);
        let key = &f[2..6];
        let text: Vec<u8> = f[6..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect();
        assert_eq!(text, br#"{"type":"hb"}"#);
    }
}
