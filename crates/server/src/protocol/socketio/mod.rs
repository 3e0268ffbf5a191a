//! The Socket.IO presence hub (seed 1, SPEC §5): Engine.IO v4 / Socket.IO v5 at
//! `/socket.io/` (WebSocket and long-polling, served by socketioxide on the same port),
//! `presence:*`, `metadata:*` and `lock:*` events with acks, and the HTTP metadata and lock
//! API. Rooms are the engine's rooms: a Socket.IO member and an ActiveNow WebSocket member
//! of the same room are in one room with one count.
//!
//! Each socket is one engine connection whose id is the Socket.IO socket id, kept alive by
//! `presence:heartbeat` (`PRESENCE_TTL_MS`; the engine's reaper removes silent ones and a
//! `leave` is broadcast). One fallback handler per socket dispatches every event (one boxed
//! handler per socket instead of one per event keeps idle sockets small).
//!
//! Events the server does not handle: one listed in `SOCKETIO_RELAY_EVENTS` is relayed to
//! the socket's room (see [`relay`]); any other one that asks for no ack is dropped, counted
//! but free of the rate budget (seed 1's SDK echoes a `presenceEvent` for every event it
//! receives, and those echoes must not crowd out real updates); one that asks for an ack
//! costs a message of the budget and is acked `unknown_type`.

mod auth;
pub(crate) mod codec;
pub(crate) mod locks;
pub mod metadata;
mod metrics;
mod presence;
mod relay;
pub mod relay_events;
pub mod sessions;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use activenow_engine::{ConnId, Connection, Identity, Liveness, Room, State};
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::{ConnectHandler, FromMessageParts};
use socketioxide::layer::SocketIoLayer;
use socketioxide::socket::Socket;
use socketioxide::SocketIo;

use crate::close::code;
use crate::host::Host;
use crate::transport::rate::{RateLimit, Verdict};

pub use relay_events::RelayEvents;

/// What the Socket.IO handlers and sockets take: the host and the renderer, which also holds
/// the Socket.IO server handle and this protocol's counters.
#[derive(Clone)]
pub struct SocketIoState {
    pub host: Host,
    pub socketio: Arc<codec::SocketIoRenderer>,
}

impl std::ops::Deref for SocketIoState {
    type Target = Host;
    fn deref(&self) -> &Host {
        &self.host
    }
}

/// The events the server handles itself (never relayed, never ignored).
const HANDLED: &[&str] = &[
    "presence:join",
    "presence:heartbeat",
    "presence:leave",
    "metadata:setChannel",
    "metadata:updateChannel",
    "metadata:removeChannel",
    "metadata:getChannel",
    "lock:acquire",
    "lock:release",
];

/// Builds the Socket.IO server (its buffers sized by the settings) and attaches it to the
/// renderer.
pub fn layer(app: &SocketIoState) -> SocketIoLayer {
    let s = &app.settings;
    // Process-wide (one Socket.IO server per process): a WebSocket write that makes no
    // progress closes the Engine.IO session, and pings/pongs count toward the message rate
    // (vendor/engineioxide/PATCHES.md).
    engineioxide::limits::set_ws_write_timeout(s.slow_consumer_timeout());
    engineioxide::limits::set_ws_control_rate(s.max_messages_per_second);
    let (layer, io) = SocketIo::builder()
        .req_path("/socket.io")
        .ping_interval(Duration::from_millis(s.socketio_ping_interval_ms))
        .ping_timeout(Duration::from_millis(s.socketio_ping_timeout_ms))
        .connect_timeout(Duration::from_millis(s.socketio_connect_timeout_ms))
        .max_buffer_size(s.socketio_max_buffer)
        .max_payload(s.socketio_max_payload_bytes as u64)
        .ws_read_buffer_size(s.socketio_ws_read_buffer_bytes)
        .ws_max_message_size(s.socketio_max_payload_bytes)
        .ws_max_frame_size(s.socketio_max_payload_bytes)
        .build_layer();
    // Validated with the settings; a bad list relays nothing.
    let relayed = Arc::new(RelayEvents::parse(&s.socketio_relay_events).unwrap_or_default());
    let on_connect = app.clone();
    // Everything happens in the middleware, which socketioxide runs before it sends the
    // CONNECT packet: the connect handler runs in a task spawned after that packet, so a
    // client's first event could otherwise arrive before its handler exists and be lost.
    io.ns(
        "/",
        (async || {}).with(move |s: SocketRef, TryData(auth): TryData<Value>| {
            let app = on_connect.clone();
            let relayed = relayed.clone();
            async move {
                admit(&app, &s)?;
                let proof = auth::handshake(&app, &s, auth.as_ref().ok())?;
                connect(app, s, proof, relayed);
                Ok::<(), &'static str>(())
            }
        }),
    );
    app.socketio.attach(io);
    layer
}

/// Detaches a Socket.IO request from its HTTP connection before socketioxide sees it: the
/// URI and header values are copied into their own small allocations and every request
/// extension but hyper's upgrade handle is dropped.
///
/// engineioxide keeps each session's request parts for the socket's whole life. As parsed,
/// they share hyper's 8-16 KiB connection read buffer (header values and the URI are
/// slices of it) and carry connection-level extensions, which kept that memory alive per
/// idle socket: measured 36 KiB per joined socket before, 24 KiB after (README).
pub async fn detach_request(mut req: axum::extract::Request) -> axum::extract::Request {
    if !req.uri().path().starts_with("/socket.io") {
        return req;
    }
    let mut headers = axum::http::HeaderMap::with_capacity(req.headers().len());
    for (name, value) in req.headers() {
        let mut owned =
            axum::http::HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        owned.set_sensitive(value.is_sensitive());
        headers.append(name.clone(), owned);
    }
    *req.headers_mut() = headers;
    let upgrade = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>();
    *req.extensions_mut() = axum::http::Extensions::new();
    if let Some(upgrade) = upgrade {
        req.extensions_mut().insert(upgrade);
    }
    if let Ok(uri) = axum::http::Uri::try_from(req.uri().to_string()) {
        *req.uri_mut() = uri;
    }
    req
}

/// Origin allowlist and connection limit, as for every WebSocket endpoint; a refused socket
/// gets Socket.IO's `connect_error` with the reason.
fn admit(app: &SocketIoState, s: &SocketRef) -> Result<(), &'static str> {
    if !app.origins.allows(&s.req_parts().headers) {
        app.metrics.upgrades_refused.inc();
        return Err("Origin is not in ALLOWED_ORIGINS");
    }
    // The handshake already held a place (see `sessions`); this socket converts it.
    if app.engine.local_connections() >= app.settings.max_connections {
        app.metrics.upgrades_refused.inc();
        return Err("MAX_CONNECTIONS reached; try another node");
    }
    Ok(())
}

/// Whether the client asked for an ack (socketioxide's `AckSender` does not tell).
struct AckAsked(bool);

impl<A: Adapter> FromMessageParts<A> for AckAsked {
    type Error = std::convert::Infallible;
    fn from_message_parts(
        _: &Arc<Socket<A>>,
        _: &mut socketioxide::handler::Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Self::Error> {
        Ok(AckAsked(ack_id.is_some()))
    }
}

fn connect(
    app: SocketIoState,
    s: SocketRef,
    proof: Option<Arc<auth::SocketAuth>>,
    relayed: Arc<RelayEvents>,
) {
    let conn = app.engine.connect_with_id(
        ConnId::new(&s.id.to_string()),
        Liveness::Heartbeat {
            ttl: app.settings.presence_ttl(),
        },
    );
    // The engine counts this session from now on (`sessions`).
    let guard = sessions::guard_of(s.req_parts());
    if let Some(guard) = &guard {
        guard.join();
    }
    let session = Arc::new(Session {
        rate: Mutex::new(RateLimit::new(app.settings.max_messages_per_second)),
        relay_rate: Mutex::new(RateLimit::new(app.settings.socketio_relay_rate)),
        relayed,
        inner: tokio::sync::Mutex::new(Inner {
            conn: Some(conn),
            joined: None,
        }),
        app,
        auth: proof.clone(),
        guard,
    });
    if let Some(proof) = proof {
        proof.watch(s.clone());
    }
    let on_event = session.clone();
    s.on_fallback(
        move |s: SocketRef,
              Event(event): Event,
              AckAsked(asked): AckAsked,
              TryData(data): TryData<Value>,
              ack: AckSender| {
            let session = on_event.clone();
            async move {
                let reply = session
                    .dispatch(&s, &event, data.unwrap_or(Value::Null), asked)
                    .await;
                // A client that asked for no ack gets none; a closing socket cannot get one.
                if let Some(reply) = reply {
                    let _ = ack.send(&reply);
                }
            }
        },
    );
    s.on_disconnect(move || {
        let session = session.clone();
        async move { session.disconnect().await }
    });
}

/// One Socket.IO socket's presence.
pub(crate) struct Session {
    app: SocketIoState,
    // A std mutex: one token-bucket update per message, never held across an await.
    rate: Mutex<RateLimit>,
    /// Relayed events' own budget (`SOCKETIO_RELAY_RATE`).
    relay_rate: Mutex<RateLimit>,
    relayed: Arc<RelayEvents>,
    /// An async mutex: socketioxide runs each message in its own task, and one socket's
    /// joins, heartbeats and leaves must apply in order.
    inner: tokio::sync::Mutex<Inner>,
    /// CLIENT_AUTH=jwt: the handshake token's subject, the only userId this socket may join
    /// as.
    auth: Option<Arc<auth::SocketAuth>>,
    /// Its Engine.IO session's place (`sessions`).
    guard: Option<Arc<sessions::SessionGuard>>,
}

struct Inner {
    /// `None` once the socket disconnected.
    conn: Option<Connection>,
    joined: Option<Joined>,
}

/// The room this socket joined (one per socket, as in the reference implementation).
struct Joined {
    room: Room,
    user: Identity,
    /// The epoch the client must not go below: the store's, or a higher one it sent.
    epoch: u64,
    state: State,
}

impl Session {
    /// The ack for `event`; `None` when the event is dropped without one.
    async fn dispatch(
        &self,
        s: &SocketRef,
        event: &str,
        data: Value,
        ack_asked: bool,
    ) -> Option<Value> {
        self.app.metrics.messages_in.inc();
        if !HANDLED.contains(&event) {
            if self.relayed.matches(event) {
                return Some(relay::relay(self, event, data).await);
            }
            if !ack_asked {
                self.app.socketio.ignored.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        }
        Some(self.handle(s, event, data).await)
    }

    async fn handle(&self, s: &SocketRef, event: &str, data: Value) -> Value {
        let verdict = self.rate.lock().unwrap_or_else(|e| e.into_inner()).check();
        if let Verdict::Drop(_) = verdict {
            self.app.metrics.rate_limited.inc();
            return codec::ack_error(Some(code::RATE_LIMITED), "too many messages; slow down");
        }
        match event {
            "presence:join" => presence::join(self, s, data).await,
            "presence:heartbeat" => presence::heartbeat(self, data).await,
            "presence:leave" => presence::leave(self, s).await,
            "metadata:setChannel" => {
                metadata::write(self, data, activenow_engine::MetadataOp::Set).await
            }
            "metadata:updateChannel" => {
                metadata::write(self, data, activenow_engine::MetadataOp::Update).await
            }
            "metadata:removeChannel" => {
                metadata::write(self, data, activenow_engine::MetadataOp::Remove).await
            }
            "metadata:getChannel" => metadata::get(self, data).await,
            "lock:acquire" => locks::acquire(self, data).await,
            "lock:release" => locks::release(self, data).await,
            "auth:refresh" if self.auth.is_some() => self.refresh(&data),
            other => {
                self.app.metrics.errors.inc();
                codec::ack_error(
                    Some(code::UNKNOWN_TYPE),
                    &format!(
                        "unknown event \"{}\"",
                        crate::close::clip(other, crate::close::ECHO_BYTES)
                    ),
                )
            }
        }
    }

    /// The joined user id: the actor of metadata writes and the owner of locks.
    async fn user(&self) -> Option<String> {
        let inner = self.inner.lock().await;
        inner.joined.as_ref().map(|j| j.user.as_str().to_owned())
    }

    /// `auth:refresh` (CLIENT_AUTH=jwt only).
    fn refresh(&self, data: &Value) -> Value {
        self.auth
            .as_ref()
            .map_or(Value::Null, |a| a.refresh(&self.app, data))
    }

    /// The joined room and user id.
    async fn joined(&self) -> Option<(Room, Identity)> {
        let inner = self.inner.lock().await;
        inner
            .joined
            .as_ref()
            .map(|j| (j.room.clone(), j.user.clone()))
    }

    async fn disconnect(&self) {
        if let Some(auth) = &self.auth {
            auth.closed.cancel();
        }
        let conn = {
            let mut inner = self.inner.lock().await;
            inner.joined = None;
            inner.conn.take()
        };
        if let Some(conn) = conn {
            conn.disconnect().await;
        }
        // A namespace disconnect can leave the Engine.IO session open: it is pending again.
        if let Some(guard) = &self.guard {
            guard.leave();
        }
    }
}

/// An integer that may come as a JSON number or a numeric string (the reference coerces).
pub fn coerce_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}
