//! `GET /app/{key}`: the upgrade, the handshake (`pusher:connection_established`, or
//! `pusher:error` and a close with Pusher's code) and the socket, one function per client
//! event (`subscribe`: subscriptions; `client`: signin and client events).

mod client;
mod subscribe;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::transport::websocket::{WebSocket, WebSocketUpgrade, WebSocketUpgradeRejection};
use activenow_engine::{Connection, Identity, Liveness, Room};
use axum::extract::{Path, Query, State as AxumState};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::codec::{self, Command};
use super::terminate;
use super::App;
use crate::close::{code as transport_code, pusher_code as code};
use crate::protocol::pusher::PusherState;
use crate::transport::admission;
use crate::transport::rate::RateLimit;
use crate::transport::ws::{self, Inbound, KeepAlive, Reply};

/// Oldest protocol version served (pusher-js 8 speaks 7).
const MIN_PROTOCOL: u32 = 7;
/// How long after `activity_timeout` a silent client is given to answer a ping (Pusher: 30 s;
/// shorter when the activity timeout itself is).
const PONG_GRACE: Duration = Duration::from_secs(30);

pub async fn upgrade(
    AxumState(app): AxumState<PusherState>,
    Path(key): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let Some(refused) = admission::refuse_origin(&app, &headers) {
        return refused;
    }
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    // Pusher refuses after the upgrade, with a pusher:error and a close code, so that
    // pusher-js learns whether to reconnect.
    let refusal = handshake_refusal(&app, &key, query.get("protocol").map(String::as_str));
    if refusal.is_some() {
        app.metrics.upgrades_refused.inc();
    }
    let upgrade = ws::configure(upgrade, &app);
    let tracker = app.sockets.clone();
    upgrade.on_upgrade(move |socket| tracker.track_future(run(app, socket, key, refusal)))
}

fn handshake_refusal(
    app: &PusherState,
    key: &str,
    protocol: Option<&str>,
) -> Option<(u16, &'static str)> {
    if app.pusher.app_by_key(key).is_none() {
        return Some((code::APP_NOT_FOUND, "App key not in use on this server"));
    }
    match protocol.map(str::parse::<u32>) {
        None => return Some((code::NO_PROTOCOL, "No protocol version supplied")),
        Some(Ok(v)) if v >= MIN_PROTOCOL => {}
        Some(_) => {
            return Some((
                code::UNSUPPORTED_PROTOCOL,
                "Unsupported protocol version: 7 or later is required",
            ))
        }
    }
    if crate::transport::admission::connections_held(app) >= app.settings.max_connections {
        return Some((code::OVER_CAPACITY, "Over capacity: reconnect later"));
    }
    None
}

async fn refuse(mut socket: WebSocket, code: u16, message: &'static str) {
    let _ = ws::send_frame(&mut socket, codec::error(code, message)).await;
    ws::send_close(&mut socket, crate::close::Close::new(code, message)).await;
}

/// The socket's life: a plain function returning an `async move` block, since an `async fn`
/// keeps every argument twice in the task's state, for the socket's whole life.
#[allow(clippy::manual_async_fn)]
fn run(
    app: PusherState,
    mut socket: WebSocket,
    key: String,
    refusal: Option<(u16, &'static str)>,
) -> impl std::future::Future<Output = ()> + Send {
    async move {
        if let Some((code, message)) = refusal {
            return Box::pin(refuse(socket, code, message)).await;
        }
        let Some(pusher_app) = app.pusher.app_by_key(&key).cloned() else {
            return;
        };
        let Some(_slot) = pusher_app.take_slot() else {
            app.metrics.upgrades_refused.inc();
            let message = "Over connection quota: the app holds max_connections sockets here";
            refuse(socket, code::OVER_QUOTA, message).await;
            return;
        };
        let socket_id = app.pusher.next_socket_id();
        let conn = app.engine.connect_with_id(socket_id, Liveness::Socket);
        let activity = app.settings.pusher_activity_timeout;
        let hello = codec::connection_established(conn.id().as_str(), activity);
        if ws::send_frame(&mut socket, hello).await.is_ok() {
            let every = Duration::from_secs(activity);
            let keep_alive = KeepAlive {
                ping_every: Some(every),
                idle_timeout: Some(every + PONG_GRACE.min(every)),
            };
            let mut inbound = PusherSocket {
                client_event_rate: RateLimit::new(app.settings.pusher_client_event_rate),
                app: &app,
                pusher_app,
                conn: &conn,
                subscriptions: Vec::new(),
                user: None,
            };
            ws::drive_closing_idle(
                &mut socket,
                conn.outbox(),
                &app,
                &mut inbound,
                keep_alive,
                code::PONG_NOT_RECEIVED,
            )
            .await;
        }
        conn.disconnect().await;
    }
}

struct Subscription {
    channel: String,
    room: Room,
    /// The signed user id on presence channels.
    user: Option<Identity>,
}

struct PusherSocket<'a> {
    app: &'a PusherState,
    pusher_app: Arc<App>,
    conn: &'a Connection,
    /// At most PUSHER_MAX_CHANNELS_PER_SOCKET: a scan is cheaper than a map.
    subscriptions: Vec<Subscription>,
    client_event_rate: RateLimit,
    /// The user id of a successful `pusher:signin`.
    user: Option<Identity>,
}

impl PusherSocket<'_> {
    fn position(&self, channel: &str) -> Option<usize> {
        self.subscriptions.iter().position(|s| s.channel == channel)
    }
}

impl Inbound for PusherSocket<'_> {
    async fn on_text(&mut self, text: &str) -> Reply {
        let result = match codec::decode(text) {
            Ok(Command::Ping) => return Reply::Frame(codec::pong()),
            Ok(Command::Pong) => return Reply::Nothing,
            Ok(Command::Subscribe {
                channel,
                auth,
                channel_data,
            }) => {
                // Boxed, as the other commands that wait: the socket loop keeps the state of
                // `on_text` for the socket's life, so it stays as small as a ping's.
                return Reply::Frame(Box::pin(self.subscribe(channel, auth, channel_data)).await);
            }
            Ok(Command::Unsubscribe { channel }) => {
                return Box::pin(self.unsubscribe(&channel)).await
            }
            Ok(Command::Signin { auth, user_data }) => {
                return Box::pin(self.signin(&auth, &user_data)).await
            }
            Ok(Command::ClientEvent {
                event,
                channel,
                data,
            }) => Box::pin(self.client_event(event, &channel, data)).await,
            Err(refusal) => Err(refusal),
        };
        match result {
            Ok(()) => Reply::Nothing,
            Err((code, message)) => {
                self.app.metrics.errors.inc();
                Reply::Frame(codec::error(code, &message))
            }
        }
    }

    fn finished_close(&self) -> crate::close::Close {
        crate::close::Close::new(code::UNAUTHORIZED, terminate::TERMINATED)
    }

    fn error_frame(&self, transport: &'static str, message: &str) -> Bytes {
        let code = if transport == transport_code::RATE_LIMITED {
            code::CLIENT_EVENT_RATE
        } else {
            code::GENERIC
        };
        codec::error(code, message)
    }
}
