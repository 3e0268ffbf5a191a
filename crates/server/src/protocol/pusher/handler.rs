//! `GET /app/{key}`: the upgrade, the handshake (`pusher:connection_established`, or
//! `pusher:error` and a close with Pusher's code) and the socket, one function per client
//! event.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use activenow_engine::{Connection, EngineError, Identity, Liveness, Publication, Room, State};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State as AxumState};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::cache;
use super::codec::{self, ChannelKind, Command, Refusal};
use super::presence::{presence_member, presence_object, refused, SubscriptionRefusal};
use super::terminate::{self, Terminator};
use super::{auth, now_ms, App};
use crate::app::AppState;
use crate::close::{code as transport_code, pusher_code as code};
use crate::transport::admission;
use crate::transport::rate::{RateLimit, Verdict};
use crate::transport::ws::{self, Inbound, KeepAlive, Reply};

/// Oldest protocol version served (pusher-js 8 speaks 7).
const MIN_PROTOCOL: u32 = 7;
/// How long after `activity_timeout` a silent client is given to answer a ping (Pusher: 30 s;
/// shorter when the activity timeout itself is).
const PONG_GRACE: Duration = Duration::from_secs(30);

pub async fn upgrade(
    AxumState(app): AxumState<AppState>,
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
    upgrade.on_upgrade(move |socket| {
        tracker.track_future(async move {
            match refusal {
                Some((code, message)) => refuse(socket, code, message).await,
                None => run(app, socket, key).await,
            }
        })
    })
}

fn handshake_refusal(
    app: &AppState,
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
    ws::send_close(&mut socket, code, message).await;
}

async fn run(app: AppState, mut socket: WebSocket, key: String) {
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

struct Subscription {
    channel: String,
    room: Room,
    /// The signed user id on presence channels.
    user: Option<Identity>,
}

struct PusherSocket<'a> {
    app: &'a AppState,
    pusher_app: App,
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

    async fn subscribe(
        &mut self,
        channel: String,
        auth: Option<String>,
        channel_data: Option<String>,
    ) -> Bytes {
        match self.try_subscribe(&channel, auth, channel_data).await {
            Ok(frame) => {
                if cache::is_cache(&channel) {
                    // Queued now, written after this reply: subscription_succeeded first.
                    let first = cache::first_frame(self.app, &self.pusher_app, &channel).await;
                    let _ = self.conn.outbox().push(first);
                }
                frame
            }
            Err(r) => {
                self.app.metrics.errors.inc();
                codec::subscription_error(&channel, r.kind, &r.message, r.status)
            }
        }
    }

    async fn try_subscribe(
        &mut self,
        channel: &str,
        auth: Option<String>,
        channel_data: Option<String>,
    ) -> Result<Bytes, SubscriptionRefusal> {
        let settings = &self.app.settings;
        if let Some(id) = codec::server_to_user(channel) {
            return self.subscribe_server_to_user(channel, id).await;
        }
        let room = codec::valid_channel(channel)
            .then(|| self.pusher_app.room(channel))
            .flatten()
            .ok_or_else(|| {
                refused(
                    "InvalidChannel",
                    400,
                    "channel names are 1-164 of A-Z a-z 0-9 _ - = @ , . ;",
                )
            })?;
        let again = self.position(channel);
        let max = settings.pusher_max_channels_per_socket;
        if again.is_none() && self.subscriptions.len() >= max {
            return Err(refused(
                "LimitReached",
                4100,
                format!(
                    "a socket may subscribe to {max} channels (PUSHER_MAX_CHANNELS_PER_SOCKET)"
                ),
            ));
        }
        let kind = ChannelKind::of(channel);
        let presence = kind == ChannelKind::Presence;
        if kind != ChannelKind::Public {
            let signed = presence.then_some(channel_data.as_deref()).flatten();
            let socket_id = self.conn.id().as_str();
            let ok = auth.as_deref().is_some_and(|a| {
                auth::verify_channel(&self.pusher_app, socket_id, channel, signed, a)
            });
            if !ok {
                return Err(refused(
                    "AuthError",
                    401,
                    format!("Invalid signature for {channel}: expected key:HMAC-SHA256(secret, \"{socket_id}:{channel}{}\")", if presence { ":channel_data" } else { "" }),
                ));
            }
        }
        let (identity, info, limit) = if presence {
            let (user, info) =
                presence_member(channel_data.as_deref(), settings.pusher_max_user_info_bytes)?;
            let limit = self.pusher_app.max_presence_members;
            (user, Some(info), (limit > 0).then_some(limit))
        } else {
            (Identity::new(self.conn.id().as_str()), None, None)
        };
        let mut state = State::new();
        if let Some(info) = &info {
            state.insert("user_info".into(), info.clone());
        }
        let joined = self
            .conn
            .join(
                room.clone(),
                identity.clone(),
                state,
                self.app.pusher.renderer.clone(),
                limit,
            )
            .await;
        let event = match joined {
            Ok(event) => event,
            Err(EngineError::RoomFull { limit }) => {
                return Err(refused(
                    "LimitReached",
                    4100,
                    format!("{channel} already has {limit} members (PUSHER_MAX_PRESENCE_MEMBERS)"),
                ))
            }
            Err(e) => {
                tracing::warn!(error = %e, "pusher subscribe failed");
                return Err(refused("ServerError", 500, "subscribe failed; retry"));
            }
        };
        let user = presence.then(|| identity.clone());
        match again {
            Some(i) => self.subscriptions[i].user = user,
            None => self.subscriptions.push(Subscription {
                channel: channel.to_owned(),
                room: room.clone(),
                user,
            }),
        }
        let Some(info) = info else {
            return Ok(codec::subscription_succeeded(channel, None));
        };
        if event.identity_changed {
            let added = Publication {
                event: codec::MEMBER_ADDED.into(),
                data: json!({"user_id": identity.as_str(), "user_info": info}),
                from: None,
                ts_ms: event.ts_ms,
            };
            let me = Some(self.conn.id().clone());
            if let Err(e) = self.app.engine.publish(&room, added, me).await {
                tracing::warn!(error = %e, "pusher member_added failed");
            }
        }
        let snapshot = self.presence_snapshot(&room).await.map_err(|e| {
            tracing::warn!(error = %e, "pusher presence snapshot failed");
            refused("ServerError", 500, "reading the members failed; retry")
        })?;
        Ok(codec::subscription_succeeded(channel, Some(&snapshot)))
    }

    /// `#server-to-user-{id}`: only the socket signed in as `id` may listen. Joined as the
    /// user, so the room's members are that user's sockets on every node.
    async fn subscribe_server_to_user(
        &mut self,
        channel: &str,
        id: &str,
    ) -> Result<Bytes, SubscriptionRefusal> {
        if self.user.as_ref().map(Identity::as_str) != Some(id) {
            return Err(refused(
                "AuthError",
                401,
                format!("{channel} is for the socket signed in (pusher:signin) as {id}"),
            ));
        }
        let room = self
            .pusher_app
            .room(channel)
            .ok_or_else(|| refused("InvalidChannel", 400, "user id too long"))?;
        if self.position(channel).is_none() {
            let joined = self
                .conn
                .join(
                    room.clone(),
                    Identity::new(id),
                    State::new(),
                    self.app.pusher.renderer.clone(),
                    None,
                )
                .await;
            if let Err(e) = joined {
                tracing::warn!(error = %e, "pusher server-to-user subscribe failed");
                return Err(refused("ServerError", 500, "subscribe failed; retry"));
            }
            self.subscriptions.push(Subscription {
                channel: channel.to_owned(),
                room,
                user: None,
            });
        }
        Ok(codec::subscription_succeeded(channel, None))
    }

    /// `pusher:signin`: a valid signature makes the socket that user (once per socket) and
    /// joins it to the user's control room, through which `terminate_connections` closes it.
    async fn signin(&mut self, auth: &str, user_data: &str) -> Reply {
        let socket_id = self.conn.id().as_str();
        if !auth::verify_signin(&self.pusher_app, socket_id, user_data, auth) {
            self.app.metrics.errors.inc();
            return Reply::Close(code::UNAUTHORIZED, "Invalid signin signature");
        }
        let id = serde_json::from_str::<Value>(user_data)
            .ok()
            .and_then(|d| d.get("id").and_then(Value::as_str).map(str::to_owned));
        let usable = id.filter(|id| {
            codec::server_to_user(&format!("{}{id}", codec::SERVER_TO_USER)).is_some()
        });
        let Some(id) = usable else {
            self.app.metrics.errors.inc();
            return Reply::Frame(codec::error(
                code::GENERIC,
                "user_data must be a JSON object with a string id of 1-128 characters",
            ));
        };
        if self.user.as_ref().is_some_and(|u| u.as_str() != id) {
            return Reply::Frame(codec::error(
                code::GENERIC,
                "this socket is already signed in as another user",
            ));
        }
        if self.user.is_none() {
            let Some(room) = terminate::user_room(&self.pusher_app, &id) else {
                return Reply::Frame(codec::error(code::GENERIC, "user id too long"));
            };
            let terminator = Arc::new(Terminator::new(self.conn.outbox().clone()));
            let joined = self
                .conn
                .join(room, Identity::new(&id), State::new(), terminator, None)
                .await;
            if let Err(e) = joined {
                tracing::warn!(error = %e, "pusher signin failed");
                return Reply::Frame(codec::error(code::RECONNECT, "signin failed; retry"));
            }
        }
        self.user = Some(Identity::new(&id));
        Reply::Frame(codec::signin_success(user_data))
    }

    /// `{"presence":{"ids":[...],"hash":{id:user_info},"count":N}}`, one entry per user.
    async fn presence_snapshot(&self, room: &Room) -> Result<Value, EngineError> {
        let members = self.app.engine.members(room).await?;
        Ok(presence_object(&members))
    }

    async fn unsubscribe(&mut self, channel: &str) -> Reply {
        if let Some(i) = self.position(channel) {
            let sub = self.subscriptions.swap_remove(i);
            if let Err(e) = self.conn.leave(&sub.room).await {
                tracing::warn!(error = %e, "pusher unsubscribe failed");
            }
        }
        Reply::Nothing
    }

    async fn client_event(
        &mut self,
        event: String,
        channel: &str,
        data: Option<&RawValue>,
    ) -> Result<(), Refusal> {
        if !self.pusher_app.client_events {
            return Err((
                code::UNAUTHORIZED,
                "client events are disabled for this app (PUSHER_CLIENT_EVENTS, client_events)"
                    .into(),
            ));
        }
        let kind = ChannelKind::of(channel);
        if !matches!(kind, ChannelKind::Private | ChannelKind::Presence) {
            return Err((
                code::UNAUTHORIZED,
                "client events are allowed on private- and presence- channels only".into(),
            ));
        }
        let Some(i) = self.position(channel) else {
            return Err((
                code::UNAUTHORIZED,
                format!("subscribe to {channel} before triggering client events on it"),
            ));
        };
        let max = self.app.settings.pusher_max_event_bytes;
        let raw = data.map_or("null", RawValue::get);
        if raw.len() > max {
            return Err((
                code::GENERIC,
                format!("Client event rejected: data is larger than {max} bytes (PUSHER_MAX_EVENT_BYTES)"),
            ));
        }
        if let Verdict::Drop(tell) = self.client_event_rate.check() {
            self.app.metrics.rate_limited.inc();
            // One error per second at most: a flood does not get a reply per event.
            if !tell {
                return Ok(());
            }
            let rate = self.app.settings.pusher_client_event_rate;
            return Err((
                code::CLIENT_EVENT_RATE,
                format!(
                    "Client event rejected: more than {rate} per second (PUSHER_CLIENT_EVENT_RATE)"
                ),
            ));
        }
        let sub = &self.subscriptions[i];
        let publication = Publication {
            event,
            data: serde_json::from_str(raw).unwrap_or(Value::Null),
            from: sub.user.clone(),
            ts_ms: now_ms(),
        };
        let room = sub.room.clone();
        let exclude = Some(self.conn.id().clone());
        if let Err(e) = self.app.engine.publish(&room, publication, exclude).await {
            tracing::warn!(error = %e, "pusher client event failed");
            return Err((code::GENERIC, "client event failed; retry".into()));
        }
        Ok(())
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
            }) => return Reply::Frame(self.subscribe(channel, auth, channel_data).await),
            Ok(Command::Unsubscribe { channel }) => return self.unsubscribe(&channel).await,
            Ok(Command::Signin { auth, user_data }) => return self.signin(&auth, &user_data).await,
            Ok(Command::ClientEvent {
                event,
                channel,
                data,
            }) => self.client_event(event, &channel, data).await,
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

    fn finished_close(&self) -> (u16, &'static str) {
        (code::UNAUTHORIZED, terminate::TERMINATED)
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
