//! The HTTP server: our own accept loop over hyper's HTTP/1.1 connections, because
//! `axum::serve` has no header, idle or body timeout, and a node that keeps every slow or
//! silent connection forever runs out of descriptors and stops serving anyone (slowloris).
//!
//! Each connection has a watchdog that knows which phase it is in:
//! - *head*: from the accept (or the first byte after an idle wait) until the request's
//!   headers are in, at most `HTTP_HEADER_TIMEOUT_MS`; a WebSocket handshake is a request
//!   like any other, so one that does not complete in time is dropped too;
//! - *busy*: a request is being handled (long polls included); its body must arrive within
//!   `HTTP_BODY_TIMEOUT_MS` (408) and fit `HTTP_MAX_BODY_BYTES` (413), see [`body`];
//! - *idle*: between keep-alive requests, at most `HTTP_IDLE_TIMEOUT_MS`.
//!
//! A connection past its phase's deadline is dropped without a response. Upgraded
//! WebSockets leave the watchdog (their protocol's keep-alive takes over) but keep their
//! per-IP place: it lives in the stream itself.
//!
//! - `watch`: the phase clock the watchdog reads.
//! - `stream`: the accepted socket, its reads and the per-IP places it holds.
//! - `handshake`: per-IP admission of WebSocket and Engine.IO polling handshakes.

mod handshake;
mod stream;
mod watch;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::host::Host;
use crate::transport::body;
use crate::transport::client_ip::{canonical, ClientIp};
pub use crate::transport::http_limits::HttpLimits;
use handshake::{admit_handshake, handshake};
use stream::Forwarded;
pub(crate) use stream::Stream;
use watch::Watch;

/// Accept errors that concern one connection only (it went away before we took it).
fn per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` until `host.shutdown` is cancelled, then lets the open
/// requests finish (the caller bounds that wait).
pub async fn serve(listener: TcpListener, router: Router, host: Host) -> io::Result<()> {
    let limits = HttpLimits::from_settings(&host.settings);
    let connections = TaskTracker::new();
    let mut backoff = BACKOFF_MIN;
    loop {
        let accepted = tokio::select! {
            _ = host.shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => {
                backoff = BACKOFF_MIN;
                a
            }
            Err(e) if per_connection(&e) => continue,
            Err(e) => {
                // Out of descriptors (EMFILE) or memory: spinning would not free any. Wait,
                // doubling up to a second, while the timeouts close idle connections.
                host.metrics.errors.inc();
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "accept error");
                tokio::select! {
                    _ = host.shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let peer = SocketAddr::new(canonical(peer.ip()), peer.port());
        let slot = match host.limits.connections.as_ref() {
            Some(counts) if !host.limits.trusted.contains(peer.ip()) => {
                match counts.acquire(peer.ip()) {
                    Some(slot) => Some(slot),
                    None => {
                        host.metrics.per_ip_refused.inc();
                        connections.spawn(refuse(tcp));
                        continue;
                    }
                }
            }
            _ => None,
        };
        let proxied = host.limits.connections.is_some() && host.limits.trusted.contains(peer.ip());
        let stream = Stream {
            tcp,
            watch: Some(Arc::new(Watch::new())),
            _slot: slot,
            forwarded: proxied.then(Forwarded::default),
        };
        connections.spawn(connection(
            stream,
            peer,
            router.clone(),
            host.clone(),
            limits,
        ));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

const REFUSED: &str = "{\"error\":\"too_many_connections\",\"message\":\"MAX_CONNECTIONS_PER_IP reached for this address\"}";

/// Tells a client over `MAX_CONNECTIONS_PER_IP` why, in at most a second, and closes.
async fn refuse(mut tcp: TcpStream) {
    let response = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{REFUSED}",
        REFUSED.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        tcp.write_all(response.as_bytes()).await?;
        tcp.shutdown().await?;
        // Read what the client sent, so that closing does not reset the connection before
        // the client has read the answer.
        let mut sink = [0u8; 1024];
        loop {
            if tokio::io::AsyncReadExt::read(&mut tcp, &mut sink).await? == 0 {
                return Ok::<(), io::Error>(());
            }
        }
    })
    .await;
}

/// The per-connection part of the service: what every request of one connection shares.
struct Conn {
    peer: SocketAddr,
    router: Router,
    host: Host,
    limits: HttpLimits,
    watch: Arc<Watch>,
    forwarded: Option<Forwarded>,
}

async fn connection(
    stream: Stream,
    peer: SocketAddr,
    router: Router,
    host: Host,
    limits: HttpLimits,
) {
    let conn = Arc::new(Conn {
        peer,
        router,
        host: host.clone(),
        limits,
        watch: stream
            .watch
            .clone()
            .unwrap_or_else(|| Arc::new(Watch::new())),
        forwarded: stream.forwarded.clone(),
    });
    let watch = conn.watch.clone();
    let service = hyper::service::service_fn(move |req| handle(conn.clone(), req));
    let http = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        // The watchdog owns the header timeout: hyper's would also cut idle keep-alives.
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(http);
    let stop = host.shutdown.cancelled();
    tokio::pin!(stop);
    let mut stopping = false;
    loop {
        let deadline = watch.deadline(&limits);
        tokio::select! {
            r = http.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, %peer, "HTTP connection ended with an error");
                }
                return;
            }
            _ = &mut stop, if !stopping => {
                stopping = true;
                http.as_mut().graceful_shutdown();
            }
            _ = watch.changed.notified() => {}
            _ = sleep_until(deadline) => {
                if watch.deadline(&limits).is_some_and(|d| d <= Instant::now()) {
                    host.metrics.http_timeouts.inc();
                    tracing::debug!(%peer, "HTTP connection timed out");
                    return;
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Marks the request over however the handler ends, cancelled included.
struct InFlight(Arc<Watch>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

async fn handle(conn: Arc<Conn>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    conn.watch.request_started();
    let _in_flight = InFlight(conn.watch.clone());
    let mut req = req.map(Body::new);
    let client = conn
        .host
        .limits
        .trusted
        .client_ip(conn.peer.ip(), req.headers());
    req.extensions_mut().insert(ConnectInfo(conn.peer));
    req.extensions_mut().insert(ClientIp(client));
    if let Some(kind) = handshake(&req) {
        if let Some(refused) =
            admit_handshake(&conn.host, conn.peer, conn.forwarded.as_ref(), client, kind)
        {
            return Ok(refused);
        }
    }
    let req = match body::read_body(req, &conn.limits).await {
        Ok(req) => req,
        Err(refused) => return Ok(refused),
    };
    let resp = match conn.router.clone().oneshot(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    };
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        // A refused upgrade does not keep the forwarded client's place.
        if let Some(Ok(mut held)) = conn.forwarded.as_ref().map(|f| f.lock()) {
            held.take();
        }
    }
    Ok(resp)
}
