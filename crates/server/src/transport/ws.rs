//! The socket loop shared by every WebSocket protocol.
//!
//! One task per socket both reads and writes, so a connection costs one task and its outbox;
//! the socket ([`websocket`](super::websocket)) holds buffers only while they hold bytes
//! (`WS_READ_BUFFER_BYTES` is the most read at once, into a buffer each worker thread
//! shares; `WS_WRITE_BUFFER_BYTES` the output queued before it is written). The loop ends on the client's close, a read
//! error, a close the engine asks for (slow consumer, finished), server shutdown (1012) or,
//! where the protocol asks for it, the client's silence (1001).
//!
//! No write may keep a task alive: every write in the loop is bounded by
//! `SLOW_CONSUMER_TIMEOUT_MS` and a close frame by [`CLOSE_WRITE_TIMEOUT`]; a socket whose
//! write makes no progress is dropped at the TCP level (its task ends, the engine connection
//! is disconnected, presence and slot are freed). Protocol violations close with 1002 (bad
//! framing) or 1007 (invalid UTF-8); pings and pongs count toward the message rate limit.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use activenow_engine::outbox::CloseCause;
use activenow_engine::{Outbox, Outgoing};
use bytes::Bytes;
use tokio_util::sync::WaitForCancellationFuture;

use crate::close::{code, reason, Close};
use crate::host::Host;
use crate::transport::rate::{RateLimit, Verdict};
use crate::transport::websocket::{
    Config, Error, Limits, Message, Violation, WebSocket, WebSocketUpgrade,
};

/// What a protocol answers to one client message.
pub enum Reply {
    Nothing,
    /// A frame for this socket only (an error, an ack).
    Frame(Bytes),
    /// Close the socket with this code and reason.
    Close(Close),
}

/// A protocol's handling of client messages on one socket.
pub trait Inbound: Send {
    fn on_text(&mut self, text: &str) -> impl Future<Output = Reply> + Send;

    /// Renders a transport-level error (rate limit, binary frame) in the protocol's format.
    fn error_frame(&self, code: &'static str, message: &str) -> Bytes;

    /// Wall-clock ms at which the socket's token expires (close 4001); read again after
    /// every message, since a `refresh` moves it. `None` = never.
    fn expires_at_ms(&self) -> Option<u64> {
        None
    }

    /// The close code and reason when the engine finishes the socket (`Outbox::finish`):
    /// a protocol whose clients read the code (Pusher's 4009) says so here.
    fn finished_close(&self) -> crate::close::Close {
        reason::DONE
    }
}

/// The monotonic instant of a wall-clock deadline (a year away for `None`).
fn deadline(at_ms: Option<u64>) -> tokio::time::Instant {
    let year = Duration::from_secs(86_400 * 365);
    let wait = at_ms.map_or(year, |at| {
        Duration::from_millis(at.saturating_sub(activenow_engine::clock::now_ms())).min(year)
    });
    tokio::time::Instant::now() + wait
}

/// Applies the buffer and size limits to an upgrade.
pub fn configure(ws: WebSocketUpgrade, host: &Host) -> WebSocketUpgrade {
    let s = &host.settings;
    ws.config(Config {
        read_chunk: s.ws_read_buffer_bytes,
        write_buffer: s.ws_write_buffer_bytes,
        // A batch of the loop (MAX_BATCH frames) must fit; beyond, the client is not reading.
        max_write_buffer: s.ws_write_buffer_bytes.max(s.max_frame_bytes) * 4,
        limits: Limits {
            max_frame: s.max_frame_bytes,
            max_message: s.max_frame_bytes,
        },
    })
}

/// Longest wait for a write outside the socket loop (a first frame, an error before the loop)
/// and for a close frame: a client that does not read cannot hold its task, nor shutdown.
pub const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Writes one text frame whose bytes are known to be UTF-8 JSON, within
/// [`CLOSE_WRITE_TIMEOUT`].
pub async fn send_frame(socket: &mut WebSocket, frame: Bytes) -> Result<(), Error> {
    send_frame_within(socket, frame, CLOSE_WRITE_TIMEOUT).await
}

async fn send_frame_within(
    socket: &mut WebSocket,
    frame: Bytes,
    limit: Duration,
) -> Result<(), Error> {
    socket.queue_text(&frame)?;
    flush_within(socket, limit).await
}

/// Writes what is queued within `limit`. Without a wait when the kernel takes it all (the
/// usual case); only a socket that must wait pays for the timer and a boxed future, so the
/// socket task stays small (it is the size of the largest future it awaits, for life).
async fn flush_within(socket: &mut WebSocket, limit: Duration) -> Result<(), Error> {
    if socket.write_now()? {
        return Ok(());
    }
    let wait = Box::pin(tokio::time::timeout(limit, socket.flush()));
    match wait.await {
        Ok(flushed) => flushed,
        Err(elapsed) => Err(Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            elapsed,
        ))),
    }
}

/// Sends a close frame, giving up after [`CLOSE_WRITE_TIMEOUT`] (the caller then drops the
/// TCP stream).
pub async fn send_close(socket: &mut WebSocket, close: Close) {
    if socket.queue_close(close.code, close.reason).is_ok() {
        let _ = flush_within(socket, CLOSE_WRITE_TIMEOUT).await;
    }
}

/// How a read error ends the socket: the close code and reason it gets, if any.
fn read_error_close(e: Error) -> Option<Close> {
    match e {
        Error::Protocol(v) => Some(match v {
            Violation::TooBig => reason::MESSAGE_TOO_BIG,
            Violation::InvalidUtf8 => reason::INVALID_UTF8,
            Violation::ReservedBits => reason::RESERVED_BITS,
            Violation::Unmasked => reason::UNMASKED,
            Violation::UnknownOpcode => reason::UNKNOWN_OPCODE,
            Violation::BadControlFrame => reason::BAD_CONTROL_FRAME,
            Violation::BadFragmentation => reason::BAD_FRAGMENTATION,
            Violation::BadClose => reason::PROTOCOL_ERROR,
        }),
        // The peer vanished, or pings were answered to a client that does not read.
        Error::Io(_) | Error::WriteBufferFull => None,
    }
}

/// Most frames written with one flush: a socket with a long queue still yields to the others.
const MAX_BATCH: usize = 64;

/// Queues `first` and whatever else is already in the outbox (at most [`MAX_BATCH`]
/// frames, and no more once `WS_WRITE_BUFFER_BYTES` are queued), to be written with one
/// system call: under load a socket's queued broadcasts leave in one write instead of one
/// each. The rest stays in the outbox for the next turn. Returns the close the engine asked
/// for, if any.
fn queue_batch(
    socket: &mut WebSocket,
    outbox: &Outbox,
    first: Outgoing,
) -> Result<Option<CloseCause>, Error> {
    let mut next = Some(first);
    let mut queued = 0;
    let mut close = None;
    while let Some(out) = next.take() {
        match out {
            Outgoing::Frame(frame) => {
                // Rendered JSON: UTF-8 by construction, so no scan.
                socket.queue_text(&frame)?;
                queued += 1;
                if queued < MAX_BATCH && socket.wants_more() {
                    next = outbox.try_next();
                }
            }
            Outgoing::Close(cause) => close = Some(cause),
        }
    }
    Ok(close)
}

/// How a batch's write ended.
enum Written {
    Done,
    Gone,
    TimedOut,
    Shutdown,
}

/// Writes the queued batch within `limit`; a write blocked on a client that does not read
/// still yields to shutdown. Waiting is the rare case, so only it is boxed.
async fn write_batch(
    socket: &mut WebSocket,
    limit: Duration,
    shutdown: Pin<&mut WaitForCancellationFuture<'_>>,
) -> Written {
    match socket.write_now() {
        Ok(true) => return Written::Done,
        Ok(false) => {}
        Err(_) => return Written::Gone,
    }
    Box::pin(async move {
        tokio::select! {
            biased;
            _ = shutdown => Written::Shutdown,
            flushed = tokio::time::timeout(limit, socket.flush()) => match flushed {
                Ok(Ok(())) => Written::Done,
                Ok(Err(_)) => Written::Gone,
                Err(_) => Written::TimedOut,
            },
        }
    })
    .await
}

/// Keep-alive of one socket.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeepAlive {
    /// Server pings this often; `None` = never.
    pub ping_every: Option<Duration>,
    /// The socket is closed with 1001 after this long without any frame from the client
    /// (pongs count); `None` = never.
    pub idle_timeout: Option<Duration>,
}

/// Runs the socket until it ends; the caller then disconnects the engine connection. Pings
/// every `PING_INTERVAL`; no idle timeout.
pub fn drive<'a>(
    socket: &'a mut WebSocket,
    outbox: &'a Outbox,
    host: &'a Host,
    inbound: &'a mut impl Inbound,
) -> impl Future<Output = ()> + Send + 'a {
    let keep_alive = KeepAlive {
        ping_every: (host.settings.ping_interval > 0)
            .then(|| Duration::from_secs(host.settings.ping_interval)),
        idle_timeout: None,
    };
    drive_with(socket, outbox, host, inbound, keep_alive)
}

/// [`drive`] with a protocol's own keep-alive.
pub fn drive_with<'a>(
    socket: &'a mut WebSocket,
    outbox: &'a Outbox,
    host: &'a Host,
    inbound: &'a mut impl Inbound,
    keep_alive: KeepAlive,
) -> impl Future<Output = ()> + Send + 'a {
    drive_closing_idle(
        socket,
        outbox,
        host,
        inbound,
        keep_alive,
        crate::close::IDLE,
    )
}

/// [`drive_with`], closing a silent socket with `idle_code` (Pusher: 4201) instead of 1001.
///
/// The socket loop's state is the socket task's size for the socket's whole life, so these
/// are plain functions returning one `async move` block: each `async fn` layer would add its
/// own state, and an `async fn` keeps every argument twice (the argument and its local).
#[allow(clippy::manual_async_fn)]
pub fn drive_closing_idle<'a>(
    socket: &'a mut WebSocket,
    outbox: &'a Outbox,
    host: &'a Host,
    inbound: &'a mut impl Inbound,
    keep_alive: KeepAlive,
    idle_code: u16,
) -> impl Future<Output = ()> + Send + 'a {
    async move {
        let mut rate = RateLimit::new(host.settings.max_messages_per_second);
        let write_limit = host.settings.slow_consumer_timeout();
        let mut ping = keep_alive
            .ping_every
            .map(|every| tokio::time::interval_at(tokio::time::Instant::now() + every, every));
        let idle = keep_alive.idle_timeout;
        // Timers only where the protocol asks for them, boxed: a socket task is the size of the
        // largest state it can be in, for life, and most sockets have neither.
        let mut silence = idle.map(|idle| Box::pin(tokio::time::sleep(idle)));
        // Created once: registering with the shared token on every turn of the loop would take
        // its lock once per message on every socket.
        let shutdown = host.shutdown.cancelled();
        tokio::pin!(shutdown);
        let mut expires = inbound.expires_at_ms();
        let mut expiry = expires.map(|at| Box::pin(tokio::time::sleep_until(deadline(Some(at)))));
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => {
                    send_close(socket, reason::SERVER_RESTART).await;
                    return;
                }
                out = outbox.next() => {
                    let close = match queue_batch(socket, outbox, out) {
                        Ok(close) => close,
                        Err(_) => return,
                    };
                    match write_batch(socket, write_limit, shutdown.as_mut()).await {
                        Written::Done => {}
                        Written::Gone => return,
                        Written::Shutdown => {
                            send_close(socket, reason::SERVER_RESTART).await;
                            return;
                        }
                        Written::TimedOut => {
                            // The client stopped reading: no close frame could get through either.
                            host.metrics.write_timeouts.inc();
                            return;
                        }
                    }
                    let close = match close {
                        None => continue,
                        Some(CloseCause::SlowConsumer) => reason::SLOW_CONSUMER,
                        Some(CloseCause::Finished) => inbound.finished_close(),
                        Some(CloseCause::Kicked) => reason::KICKED,
                    };
                    send_close(socket, close).await;
                    return;
                }
                msg = socket.recv() => {
                    if let (Some(idle), Some(silence)) = (idle, silence.as_mut()) {
                        silence.as_mut().reset(tokio::time::Instant::now() + idle);
                    }
                    let reply = match msg {
                        None => return,
                        Some(Err(e)) => {
                            if let Some(close) = read_error_close(e) {
                                host.metrics.errors.inc();
                                send_close(socket, close).await;
                            }
                            return;
                        }
                        Some(Ok(Message::Close(_))) => return,
                        // The socket answers pings itself, so a ping over the limit cannot be
                        // dropped: a ping flood closes the socket.
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => match rate.check() {
                            Verdict::Allow => continue,
                            Verdict::Drop(_) => {
                                host.metrics.rate_limited.inc();
                                send_close(socket, reason::TOO_MANY_PINGS).await;
                                return;
                            }
                        },
                        Some(Ok(Message::Binary(_))) => {
                            host.metrics.errors.inc();
                            Reply::Frame(inbound.error_frame(code::BINARY_NOT_SUPPORTED, "send JSON text frames"))
                        }
                        Some(Ok(Message::Text(text))) => {
                            host.metrics.messages_in.inc();
                            match rate.check() {
                                Verdict::Allow => inbound.on_text(text.as_str()).await,
                                Verdict::Drop(tell) => {
                                    host.metrics.rate_limited.inc();
                                    if tell {
                                        Reply::Frame(inbound.error_frame(code::RATE_LIMITED, "too many messages; slow down"))
                                    } else {
                                        Reply::Nothing
                                    }
                                }
                            }
                        }
                    };
                    match reply {
                        Reply::Nothing => {}
                        Reply::Frame(frame) => {
                            if send_frame_within(socket, frame, write_limit).await.is_err() {
                                return;
                            }
                        }
                        Reply::Close(close) => {
                            send_close(socket, close).await;
                            return;
                        }
                    }
                    if inbound.expires_at_ms() != expires {
                        expires = inbound.expires_at_ms();
                        expiry = expires.map(|at| Box::pin(tokio::time::sleep_until(deadline(Some(at)))));
                    }
                }
                _ = async {
                    match expiry.as_mut() {
                        Some(at) => at.as_mut().await,
                        None => std::future::pending().await,
                    }
                } => {
                    send_close(socket, reason::TOKEN_EXPIRED).await;
                    return;
                }
                _ = async {
                    match ping.as_mut() {
                        Some(p) => { p.tick().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => {
                    if socket.queue_ping().is_err() || flush_within(socket, write_limit).await.is_err() {
                        return;
                    }
                }
                _ = async {
                    match silence.as_mut() {
                        Some(at) => at.as_mut().await,
                        None => std::future::pending().await,
                    }
                } => {
                    send_close(socket, Close::new(idle_code, reason::IDLE_TIMEOUT)).await;
                    return;
                }
            }
        }
    }
}
