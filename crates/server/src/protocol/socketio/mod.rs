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

mod codec;
mod http;
mod locks;
pub mod metadata;
mod presence;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use activenow_engine::{ConnId, Connection, Identity, Liveness, Room, State};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::SocketIo;

use crate::app::AppState;
use crate::close::code;
use crate::transport::rate::{RateLimit, Verdict};

pub use codec::SocketIoRenderer;

/// HTTP routes of the channel metadata and lock API.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/channels/{channel_type}/{channel_name}/metadata",
            get(http::get_metadata)
                .put(http::set_metadata)
                .patch(http::update_metadata)
                .delete(http::remove_metadata),
        )
        .route(
            "/v1/locks/{name}",
            post(http::acquire_lock)
                .delete(http::release_lock)
                .get(http::lock_holder),
        )
}

/// Builds the Socket.IO server (its buffers sized by the settings) and attaches it to the
/// renderer.
pub fn layer(app: &AppState) -> SocketIoLayer {
    let s = &app.settings;
    let (layer, io) = SocketIo::builder()
        .req_path("/socket.io")
        .ping_interval(Duration::from_millis(s.socketio_ping_interval_ms))
        .ping_timeout(Duration::from_millis(s.socketio_ping_timeout_ms))
        .max_buffer_size(s.socketio_max_buffer)
        .max_payload(s.max_frame_bytes as u64)
        .ws_read_buffer_size(s.socketio_ws_read_buffer_bytes)
        .ws_max_message_size(s.max_frame_bytes)
        .ws_max_frame_size(s.max_frame_bytes)
        .build_layer();
    let on_connect = app.clone();
    // Everything happens in the middleware, which socketioxide runs before it sends the
    // CONNECT packet: the connect handler runs in a task spawned after that packet, so a
    // client's first event could otherwise arrive before its handler exists and be lost.
    io.ns(
        "/",
        (async || {}).with(move |s: SocketRef| {
            let app = on_connect.clone();
            async move {
                admit(&app, &s)?;
                connect(app, s);
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
fn admit(app: &AppState, s: &SocketRef) -> Result<(), &'static str> {
    if !app.origins.allows(&s.req_parts().headers) {
        app.metrics.upgrades_refused.inc();
        return Err("Origin is not in ALLOWED_ORIGINS");
    }
    if app.engine.local_connections() >= app.settings.max_connections {
        app.metrics.upgrades_refused.inc();
        return Err("MAX_CONNECTIONS reached; try another node");
    }
    Ok(())
}

fn connect(app: AppState, s: SocketRef) {
    let conn = app.engine.connect_with_id(
        ConnId::new(&s.id.to_string()),
        Liveness::Heartbeat {
            ttl: app.settings.presence_ttl(),
        },
    );
    let session = Arc::new(Session {
        rate: Mutex::new(RateLimit::new(app.settings.max_messages_per_second)),
        inner: tokio::sync::Mutex::new(Inner {
            conn: Some(conn),
            joined: None,
        }),
        app,
    });
    let on_event = session.clone();
    s.on_fallback(
        move |s: SocketRef, Event(event): Event, TryData(data): TryData<Value>, ack: AckSender| {
            let session = on_event.clone();
            async move {
                let reply = session
                    .dispatch(&s, &event, data.unwrap_or(Value::Null))
                    .await;
                // A client that asked for no ack gets none; a closing socket cannot get one.
                let _ = ack.send(&reply);
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
    app: AppState,
    // A std mutex: one token-bucket update per message, never held across an await.
    rate: Mutex<RateLimit>,
    /// An async mutex: socketioxide runs each message in its own task, and one socket's
    /// joins, heartbeats and leaves must apply in order.
    inner: tokio::sync::Mutex<Inner>,
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
    async fn dispatch(&self, s: &SocketRef, event: &str, data: Value) -> Value {
        let verdict = self.rate.lock().unwrap_or_else(|e| e.into_inner()).check();
        self.app.metrics.messages_in.inc();
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
            other => {
                self.app.metrics.errors.inc();
                codec::ack_error(
                    Some(code::UNKNOWN_TYPE),
                    &format!("unknown event \"{other}\""),
                )
            }
        }
    }

    /// The joined user id: the actor of metadata writes and the owner of locks.
    async fn user(&self) -> Option<String> {
        let inner = self.inner.lock().await;
        inner.joined.as_ref().map(|j| j.user.as_str().to_owned())
    }

    async fn disconnect(&self) {
        let conn = {
            let mut inner = self.inner.lock().await;
            inner.joined = None;
            inner.conn.take()
        };
        if let Some(conn) = conn {
            conn.disconnect().await;
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
