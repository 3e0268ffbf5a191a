//! The socket loop shared by every WebSocket protocol.
//!
//! One task per socket both reads and writes, so a connection costs one task, its outbox
//! and the WebSocket buffers (sized by `WS_READ_BUFFER_BYTES` / `WS_WRITE_BUFFER_BYTES`
//! instead of the library's 128 KiB defaults). The loop ends on the client's close, a read
//! error, a close the engine asks for (slow consumer, finished), server shutdown (1012) or,
//! where the protocol asks for it, the client's silence (1001).
//!
//! No write may keep a task alive: every write in the loop is bounded by
//! `SLOW_CONSUMER_TIMEOUT_MS` and a close frame by [`CLOSE_WRITE_TIMEOUT`]; a socket whose
//! write makes no progress is dropped at the TCP level (its task ends, the engine connection
//! is disconnected, presence and slot are freed). Protocol violations close with 1002 (bad
//! framing) or 1007 (invalid UTF-8); pings and pongs count toward the message rate limit.

use std::future::Future;
use std::time::Duration;

use activenow_engine::outbox::CloseCause;
use activenow_engine::{Outbox, Outgoing};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use bytes::Bytes;
use futures_util::SinkExt;

use crate::app::AppState;
use crate::close::{code, reason, Close};
use crate::transport::rate::{RateLimit, Verdict};

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
pub fn configure(ws: WebSocketUpgrade, app: &AppState) -> WebSocketUpgrade {
    let s = &app.settings;
    ws.read_buffer_size(s.ws_read_buffer_bytes)
        .write_buffer_size(s.ws_write_buffer_bytes)
        .max_write_buffer_size(s.ws_write_buffer_bytes.max(s.max_frame_bytes) * 4)
        .max_message_size(s.max_frame_bytes)
        .max_frame_size(s.max_frame_bytes)
}

/// Longest wait for a write outside the socket loop (a first frame, an error before the loop)
/// and for a close frame: a client that does not read cannot hold its task, nor shutdown.
pub const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Writes one text frame whose bytes are known to be UTF-8 JSON, within
/// [`CLOSE_WRITE_TIMEOUT`].
pub async fn send_frame(socket: &mut WebSocket, frame: Bytes) -> Result<(), axum::Error> {
    send_frame_within(socket, frame, CLOSE_WRITE_TIMEOUT).await
}

async fn send_frame_within(
    socket: &mut WebSocket,
    frame: Bytes,
    limit: Duration,
) -> Result<(), axum::Error> {
    // Frames come from serde_json, so this check never fails; it costs one UTF-8 scan.
    let text = Utf8Bytes::try_from(frame).map_err(axum::Error::new)?;
    match tokio::time::timeout(limit, socket.send(Message::Text(text))).await {
        Ok(sent) => sent,
        Err(elapsed) => Err(axum::Error::new(elapsed)),
    }
}

/// Sends a close frame, giving up after [`CLOSE_WRITE_TIMEOUT`] (the caller then drops the
/// TCP stream).
pub async fn send_close(socket: &mut WebSocket, close: Close) {
    let frame = CloseFrame {
        code: close.code,
        reason: Utf8Bytes::from_static(close.reason),
    };
    let _ = tokio::time::timeout(
        CLOSE_WRITE_TIMEOUT,
        socket.send(Message::Close(Some(frame))),
    )
    .await;
}

/// How a read error ends the socket: the close code and reason it gets, if any.
fn read_error_close(e: axum::Error) -> Option<Close> {
    use tungstenite::error::ProtocolError;
    let inner = e.into_inner();
    match inner.downcast_ref::<tungstenite::Error>()? {
        tungstenite::Error::Capacity(_) => Some(reason::MESSAGE_TOO_BIG),
        tungstenite::Error::Utf8(_) => Some(reason::INVALID_UTF8),
        tungstenite::Error::Protocol(p) => {
            Some(match p {
                ProtocolError::NonZeroReservedBits => reason::RESERVED_BITS,
                ProtocolError::UnmaskedFrameFromClient => reason::UNMASKED,
                ProtocolError::UnknownControlFrameType(_)
                | ProtocolError::UnknownDataFrameType(_) => reason::UNKNOWN_OPCODE,
                ProtocolError::FragmentedControlFrame | ProtocolError::ControlFrameTooBig => {
                    reason::BAD_CONTROL_FRAME
                }
                ProtocolError::UnexpectedContinueFrame | ProtocolError::ExpectedFragment(_) => {
                    reason::BAD_FRAGMENTATION
                }
                // The peer vanished or the stream ended mid-frame: nobody to tell.
                ProtocolError::ResetWithoutClosingHandshake
                | ProtocolError::HandshakeIncomplete => return None,
                _ => reason::PROTOCOL_ERROR,
            })
        }
        _ => None,
    }
}

/// Most frames written with one flush: a socket with a long queue still yields to the others.
const MAX_BATCH: usize = 64;

/// Writes `first` and whatever else is already queued, then flushes once: under load a
/// socket's queued broadcasts leave in one write instead of one system call each. Returns the
/// close the engine asked for, if any; `Err` when the socket is gone.
async fn write_queued(
    socket: &mut WebSocket,
    outbox: &Outbox,
    first: Outgoing,
) -> Result<Option<CloseCause>, axum::Error> {
    let mut next = Some(first);
    let mut written = 0;
    let mut close = None;
    while let Some(out) = next.take() {
        match out {
            Outgoing::Frame(frame) => {
                let text = Utf8Bytes::try_from(frame).map_err(axum::Error::new)?;
                socket.feed(Message::Text(text)).await?;
                written += 1;
                if written < MAX_BATCH {
                    next = outbox.try_next();
                }
            }
            Outgoing::Close(cause) => close = Some(cause),
        }
    }
    if written > 0 {
        socket.flush().await?;
    }
    Ok(close)
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
pub async fn drive(
    socket: &mut WebSocket,
    outbox: &Outbox,
    app: &AppState,
    inbound: &mut impl Inbound,
) {
    let keep_alive = KeepAlive {
        ping_every: (app.settings.ping_interval > 0)
            .then(|| Duration::from_secs(app.settings.ping_interval)),
        idle_timeout: None,
    };
    drive_with(socket, outbox, app, inbound, keep_alive).await
}

/// [`drive`] with a protocol's own keep-alive.
pub async fn drive_with(
    socket: &mut WebSocket,
    outbox: &Outbox,
    app: &AppState,
    inbound: &mut impl Inbound,
    keep_alive: KeepAlive,
) {
    drive_closing_idle(socket, outbox, app, inbound, keep_alive, crate::close::IDLE).await
}

/// [`drive_with`], closing a silent socket with `idle_code` (Pusher: 4201) instead of 1001.
pub async fn drive_closing_idle(
    socket: &mut WebSocket,
    outbox: &Outbox,
    app: &AppState,
    inbound: &mut impl Inbound,
    keep_alive: KeepAlive,
    idle_code: u16,
) {
    let mut rate = RateLimit::new(app.settings.max_messages_per_second);
    let write_limit = app.settings.slow_consumer_timeout();
    let mut ping = keep_alive
        .ping_every
        .map(|every| tokio::time::interval_at(tokio::time::Instant::now() + every, every));
    let idle = keep_alive.idle_timeout;
    let far = Duration::from_secs(86_400 * 365);
    let silence = tokio::time::sleep(idle.unwrap_or(far));
    tokio::pin!(silence);
    // Created once: registering with the shared token on every turn of the loop would take
    // its lock once per message on every socket.
    let shutdown = app.shutdown.cancelled();
    tokio::pin!(shutdown);
    let mut expires = inbound.expires_at_ms();
    let expiry = tokio::time::sleep_until(deadline(expires));
    tokio::pin!(expiry);
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => {
                send_close(socket, reason::SERVER_RESTART).await;
                return;
            }
            out = outbox.next() => match tokio::select! {
                biased;
                // A write blocked on a client that does not read still yields to shutdown.
                _ = &mut shutdown => {
                    send_close(socket, reason::SERVER_RESTART).await;
                    return;
                }
                written = tokio::time::timeout(write_limit, write_queued(socket, outbox, out)) => written,
            } {
                Ok(Ok(None)) => {}
                Ok(Ok(Some(CloseCause::SlowConsumer))) => {
                    send_close(socket, reason::SLOW_CONSUMER).await;
                    return;
                }
                Ok(Ok(Some(CloseCause::Finished))) => {
                    send_close(socket, inbound.finished_close()).await;
                    return;
                }
                Ok(Ok(Some(CloseCause::Kicked))) => {
                    send_close(socket, crate::close::reason::KICKED).await;
                    return;
                }
                Ok(Err(_)) => return,
                Err(_) => {
                    // The client stopped reading: no close frame could get through either.
                    app.metrics.write_timeouts.inc();
                    return;
                }
            },
            msg = socket.recv() => {
                if let Some(idle) = idle {
                    silence.as_mut().reset(tokio::time::Instant::now() + idle);
                }
                let reply = match msg {
                    None => return,
                    Some(Err(e)) => {
                        if let Some(close) = read_error_close(e) {
                            app.metrics.errors.inc();
                            send_close(socket, close).await;
                        }
                        return;
                    }
                    Some(Ok(Message::Close(_))) => return,
                    // The library answers pings itself, so a ping over the limit cannot be
                    // dropped: a ping flood closes the socket.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => match rate.check() {
                        Verdict::Allow => continue,
                        Verdict::Drop(_) => {
                            app.metrics.rate_limited.inc();
                            send_close(socket, reason::TOO_MANY_PINGS).await;
                            return;
                        }
                    },
                    Some(Ok(Message::Binary(_))) => {
                        app.metrics.errors.inc();
                        Reply::Frame(inbound.error_frame(code::BINARY_NOT_SUPPORTED, "send JSON text frames"))
                    }
                    Some(Ok(Message::Text(text))) => {
                        app.metrics.messages_in.inc();
                        match rate.check() {
                            Verdict::Allow => inbound.on_text(text.as_str()).await,
                            Verdict::Drop(tell) => {
                                app.metrics.rate_limited.inc();
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
                    expiry.as_mut().reset(deadline(expires));
                }
            }
            _ = &mut expiry, if expires.is_some() => {
                send_close(socket, reason::TOKEN_EXPIRED).await;
                return;
            }
            _ = async {
                match ping.as_mut() {
                    Some(p) => { p.tick().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {
                let ping = tokio::time::timeout(write_limit, socket.send(Message::Ping(Bytes::new())));
                if !matches!(ping.await, Ok(Ok(()))) {
                    return;
                }
            }
            _ = &mut silence, if idle.is_some() => {
                send_close(socket, Close::new(idle_code, reason::IDLE_TIMEOUT)).await;
                return;
            }
        }
    }
}
