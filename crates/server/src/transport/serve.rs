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

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, Response, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::error::http_error;
use crate::host::Host;
use crate::transport::body;
use crate::transport::client_ip::{canonical, ClientIp};
pub use crate::transport::http_limits::HttpLimits;
use crate::transport::per_ip::{self, IpSlot};

const HEAD: u8 = 0;
const BUSY: u8 = 1;
const IDLE: u8 = 2;

/// One connection's phase and when it began (ms since `started`). Written by the stream
/// (first byte after idle), the service (request in, response out) and read by the watchdog.
struct Watch {
    started: Instant,
    phase: AtomicU8,
    since_ms: AtomicU64,
    in_flight: AtomicU64,
    /// Wakes the watchdog when a deadline may have moved earlier (busy -> idle, idle -> head).
    changed: Notify,
}

impl Watch {
    fn new() -> Watch {
        Watch {
            started: Instant::now(),
            phase: AtomicU8::new(HEAD),
            since_ms: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn enter(&self, phase: u8) {
        self.since_ms.store(self.now_ms(), Ordering::Relaxed);
        self.phase.store(phase, Ordering::Release);
    }

    fn bytes_read(&self) {
        if self.phase.load(Ordering::Acquire) == IDLE {
            self.enter(HEAD);
            self.changed.notify_one();
        }
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.enter(BUSY);
    }

    fn request_ended(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.enter(IDLE);
            self.changed.notify_one();
        }
    }

    /// When the current phase runs out; `None` while busy.
    fn deadline(&self, limits: &HttpLimits) -> Option<Instant> {
        let limit = match self.phase.load(Ordering::Acquire) {
            HEAD => limits.header,
            IDLE => limits.idle,
            _ => return None,
        };
        let since = Duration::from_millis(self.since_ms.load(Ordering::Relaxed));
        Some(self.started + since + limit)
    }
}

/// The accepted socket, with the watchdog's view of its reads and the per-IP places it
/// holds: its own (direct clients) or, behind a trusted proxy, the forwarded client's of the
/// WebSocket it carries. Both are released when the socket closes, upgraded or not.
pub(crate) struct Stream {
    tcp: TcpStream,
    /// `None` once a WebSocket took the stream over (it has no watchdog).
    watch: Option<Arc<Watch>>,
    _slot: Option<IpSlot>,
    /// Only on connections from a trusted proxy when connections per IP are limited: a
    /// direct client's socket does not pay for it.
    forwarded: Option<Forwarded>,
}

/// The forwarded client's place, shared by the connection and the requests it serves.
type Forwarded = Arc<Mutex<Option<IpSlot>>>;

impl Stream {
    /// The socket itself, for the WebSocket that takes the stream over after the upgrade.
    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Called by the WebSocket that takes the stream over: the watchdog's state (freed with
    /// the HTTP connection task) is not kept for the socket's life.
    pub(crate) fn leave_watchdog(&mut self) {
        self.watch = None;
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if buf.filled().len() > before {
            if let Some(watch) = &self.watch {
                watch.bytes_read();
            }
        }
        r
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

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
        if let Some(refused) = admit_handshake(&conn, client, kind) {
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Handshake {
    WebSocket,
    /// An Engine.IO polling handshake (a GET without `sid`): a session without a socket.
    Polling,
}

fn handshake(req: &Request<Body>) -> Option<Handshake> {
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if upgrade {
        return Some(Handshake::WebSocket);
    }
    let polling = req.method() == axum::http::Method::GET
        && req.uri().path().starts_with("/socket.io")
        && req.uri().query().is_some_and(|q| {
            q.split('&').any(|p| p == "transport=polling")
                && !q.split('&').any(|p| p.starts_with("sid="))
        });
    polling.then_some(Handshake::Polling)
}

fn too_many(code: &'static str, message: &'static str) -> Response<Body> {
    http_error(StatusCode::TOO_MANY_REQUESTS, code, message)
}

/// The handshake rate of the client, and behind a trusted proxy its WebSocket count.
fn admit_handshake(
    conn: &Conn,
    client: std::net::IpAddr,
    kind: Handshake,
) -> Option<Response<Body>> {
    let limits = &conn.host.limits;
    if !per_ip::allow(&limits.handshakes, client) {
        conn.host.metrics.per_ip_refused.inc();
        return Some(too_many(
            crate::close::code::TOO_MANY_HANDSHAKES,
            "MAX_HANDSHAKES_PER_IP_PER_SECOND reached for this address; retry later",
        ));
    }
    let proxied = limits.trusted.contains(conn.peer.ip());
    if let (Some(counts), Some(forwarded), true, Handshake::WebSocket) =
        (&limits.connections, &conn.forwarded, proxied, kind)
    {
        let mut held = forwarded.lock().unwrap_or_else(|e| e.into_inner());
        held.take();
        match counts.acquire(client) {
            Some(slot) => *held = Some(slot),
            None => {
                conn.host.metrics.per_ip_refused.inc();
                return Some(too_many(
                    crate::close::code::TOO_MANY_CONNECTIONS,
                    "MAX_CONNECTIONS_PER_IP reached for this address",
                ));
            }
        }
    }
    None
}
