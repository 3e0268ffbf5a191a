//! Engine.IO sessions as connections. socketioxide creates a session (~9 KB, its heartbeat
//! task, its request parts) at every handshake, long before the Socket.IO CONNECT that
//! makes it one of the engine's connections, so a session that never connects must hold a
//! place too:
//!
//! - every open session counts toward `MAX_CONNECTIONS`: this node holds
//!   `engine.local_connections()` + the sessions not yet joined to the engine, and a
//!   handshake beyond that gets 503 `too_many_connections` (a joined session is counted by
//!   the engine only, never twice);
//! - a polling session counts toward `MAX_CONNECTIONS_PER_IP` (sessions, not the many
//!   requests of one session). A WebSocket is already counted by its TCP connection (or,
//!   behind a trusted proxy, by its forwarded client), so a session that upgrades gives
//!   its own place back;
//! - a session that never sends CONNECT is closed after `SOCKETIO_CONNECT_TIMEOUT_MS`
//!   (socketioxide's connect timeout).
//!
//! A session's [`SessionGuard`] lives in its handshake request's extensions, which
//! engineioxide keeps for the session's whole life: the place is freed when the session is.
//! The same extensions carry the session's overflow limits (vendor/engineioxide/PATCHES.md).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use engineioxide::overflow::OverflowLimits;

use crate::error::http_error;
use crate::host::UncountedConnections;
use crate::protocol::socketio::SocketIoState;
use crate::transport::client_ip::ClientIp;
use crate::transport::per_ip::IpSlot;

/// The open Engine.IO sessions of this node that the engine does not count.
#[derive(Default)]
pub struct EngineSessions {
    pending: AtomicU64,
    /// Polling sessions holding a per-IP place, by sid, so that their upgrade can give it
    /// back.
    polling: Mutex<HashMap<String, Weak<SessionGuard>>>,
}

impl EngineSessions {
    /// Sessions open and not joined to the engine (no Socket.IO CONNECT yet, or after a
    /// namespace disconnect).
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    fn polling(&self) -> std::sync::MutexGuard<'_, HashMap<String, Weak<SessionGuard>>> {
        self.polling.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `MAX_CONNECTIONS` counts the sessions the engine does not count yet.
impl UncountedConnections for EngineSessions {
    fn count(&self) -> u64 {
        self.pending()
    }
}

/// One session's places; dropped with the session.
pub struct SessionGuard {
    sessions: Arc<EngineSessions>,
    joined: AtomicBool,
    ip: Mutex<Option<IpSlot>>,
    sid: OnceLock<String>,
}

impl SessionGuard {
    fn new(sessions: Arc<EngineSessions>, ip: Option<IpSlot>) -> SessionGuard {
        sessions.pending.fetch_add(1, Ordering::Relaxed);
        SessionGuard {
            sessions,
            joined: AtomicBool::new(false),
            ip: Mutex::new(ip),
            sid: OnceLock::new(),
        }
    }

    /// The session became an engine connection, which counts it from now on.
    pub fn join(&self) {
        if !self.joined.swap(true, Ordering::AcqRel) {
            self.sessions.pending.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Its engine connection is gone but the session may stay open.
    pub fn leave(&self) {
        if self.joined.swap(false, Ordering::AcqRel) {
            self.sessions.pending.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn release_ip(&self) {
        self.ip.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if !*self.joined.get_mut() {
            self.sessions.pending.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(sid) = self.sid.get() {
            let mut polling = self.sessions.polling();
            if polling.get(sid).is_some_and(|w| w.strong_count() == 0) {
                polling.remove(sid);
            }
        }
    }
}

/// The guard of the session a Socket.IO socket belongs to.
pub fn guard_of(parts: &axum::http::request::Parts) -> Option<Arc<SessionGuard>> {
    parts.extensions.get::<Arc<SessionGuard>>().cloned()
}

fn query_param<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.uri()
        .query()?
        .split('&')
        .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
}

fn is_upgrade(req: &Request) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The middleware in front of socketioxide: admits handshakes and detaches every request
/// (see [`super::detach_request`]).
pub async fn gate(State(app): State<SocketIoState>, req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/socket.io") {
        return next.run(req).await;
    }
    let client = req.extensions().get::<ClientIp>().map(|c| c.0);
    let sid = query_param(&req, "sid").map(str::to_owned);
    let upgrade = is_upgrade(&req);
    let req = super::detach_request(req).await;
    let Some(sid) = sid else {
        return handshake(&app, client, upgrade, req, next).await;
    };
    let resp = next.run(req).await;
    if upgrade && resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let guard = app.socketio.sessions.polling().remove(&sid);
        if let Some(guard) = guard.and_then(|w| w.upgrade()) {
            guard.release_ip();
        }
    }
    resp
}

async fn handshake(
    app: &SocketIoState,
    client: Option<std::net::IpAddr>,
    upgrade: bool,
    mut req: Request,
    next: Next,
) -> Response {
    let sessions = &app.socketio.sessions;
    if crate::transport::admission::connections_held(app) >= app.settings.max_connections {
        app.metrics.upgrades_refused.inc();
        return http_error(
            StatusCode::SERVICE_UNAVAILABLE,
            crate::close::code::TOO_MANY_CONNECTIONS,
            "MAX_CONNECTIONS reached; try another node",
        );
    }
    let ip = match (&app.limits.connections, client, upgrade) {
        (Some(counts), Some(client), false) => match counts.acquire(client) {
            Some(slot) => Some(slot),
            None => {
                app.metrics.per_ip_refused.inc();
                return http_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    crate::close::code::TOO_MANY_CONNECTIONS,
                    "MAX_CONNECTIONS_PER_IP reached for this address",
                );
            }
        },
        _ => None,
    };
    let polling = ip.is_some();
    let guard = Arc::new(SessionGuard::new(sessions.clone(), ip));
    req.extensions_mut().insert(guard.clone());
    req.extensions_mut().insert(overflow_limits(app));
    let resp = next.run(req).await;
    if !polling || resp.status() != StatusCode::OK {
        return resp;
    }
    // The polling handshake's answer is the open packet, `0{"sid":"...",...}`: the sid its
    // upgrade will name.
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 4096).await else {
        return Response::from_parts(parts, Body::empty());
    };
    if let Some(sid) = open_packet_sid(&bytes) {
        sessions
            .polling()
            .insert(sid.clone(), Arc::downgrade(&guard));
        let _ = guard.sid.set(sid);
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn open_packet_sid(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let rest = &text[text.find("\"sid\":\"")? + 7..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// The session's overflow beyond its `SOCKETIO_MAX_BUFFER` channel: the slow-consumer
/// policy of every other socket (`SEND_QUEUE_MAX_FRAMES`, `SLOW_CONSUMER_TIMEOUT_MS`).
fn overflow_limits(app: &SocketIoState) -> OverflowLimits {
    // The engine, not the whole state: the session must not keep the server alive.
    let engine = app.engine.clone();
    OverflowLimits {
        max_packets: app.settings.send_queue_max_frames,
        timeout: app.settings.slow_consumer_timeout(),
        on_slow: Arc::new(move || engine.metrics().slow_consumers.inc()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sid_of_an_open_packet() {
        assert_eq!(
            open_packet_sid(br#"0{"sid":"abc-_1","upgrades":["websocket"]}"#).as_deref(),
            Some("abc-_1")
        );
        assert_eq!(open_packet_sid(b"0{}"), None);
    }

    #[test]
    fn a_session_is_pending_until_joined_and_counted_once() {
        let sessions = Arc::new(EngineSessions::default());
        let a = SessionGuard::new(sessions.clone(), None);
        let b = SessionGuard::new(sessions.clone(), None);
        assert_eq!(sessions.pending(), 2);
        a.join();
        a.join();
        assert_eq!(sessions.pending(), 1);
        drop(a);
        assert_eq!(sessions.pending(), 1);
        b.join();
        b.leave();
        assert_eq!(sessions.pending(), 1);
        drop(b);
        assert_eq!(sessions.pending(), 0);
    }
}
