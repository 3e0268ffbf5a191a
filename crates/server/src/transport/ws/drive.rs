//! The loop that one task per socket runs for the socket's whole life, which is why its
//! state is kept small: it reads, writes the outbox, pings, and closes on every way a socket
//! can end (see the `ws` module).

use std::future::Future;
use std::time::Duration;

use activenow_engine::outbox::CloseCause;
use activenow_engine::Outbox;

use super::inbound::{Inbound, Reply};
use super::write::{
    flush_within, queue_batch, send_close, send_frame_within, write_batch, Written,
};
use crate::close::{code, reason, Close};
use crate::host::Host;
use crate::transport::rate::{RateLimit, Verdict};
use crate::transport::websocket::{Error, Message, Violation, WebSocket};

/// The monotonic instant of a wall-clock deadline (a year away for `None`).
fn deadline(at_ms: Option<u64>) -> tokio::time::Instant {
    let year = Duration::from_secs(86_400 * 365);
    let wait = at_ms.map_or(year, |at| {
        Duration::from_millis(at.saturating_sub(activenow_engine::clock::now_ms())).min(year)
    });
    tokio::time::Instant::now() + wait
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
