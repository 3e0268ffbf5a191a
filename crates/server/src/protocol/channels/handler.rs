//! `GET /ws`: the upgrade (Origin, token, connection limit, all refused before it) and the
//! channel socket, one function per command.

use std::collections::HashMap;

use crate::transport::websocket::{WebSocket, WebSocketUpgrade, WebSocketUpgradeRejection};
use activenow_engine::{Connection, EngineError, Publication, Room, State};
use axum::extract::{Query, State as AxumState};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

use super::auth::{AuthError, Principal};
use super::codec::{self, Command, Refusal};
use super::token;
use crate::client_auth::{self, Expiring};
use crate::close::{auth_code, channel_code, code};
use crate::protocol::channels::ChannelsState;
use crate::transport::admission;
use crate::transport::rate::{RateLimit, Verdict};
use crate::transport::ws::{self, Inbound, KeepAlive, Reply};

pub async fn upgrade(
    AxumState(app): AxumState<ChannelsState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let Some(refused) = admission::refuse_origin(&app, &headers) {
        return refused;
    }
    // Authentication comes before the upgrade check, so that a plain `curl /ws` learns that
    // it needs a token rather than an Upgrade header.
    let verifier = &app.channels.verifier;
    let presented = token::presented(query.get("token").map(String::as_str), &headers);
    let verified = match (&presented, verifier.is_configured()) {
        (_, false) => verifier.verify("", token::now_ms()),
        (None, true) => Err(AuthError {
            code: auth_code::MISSING,
            message: "pass a JWT as ?token=, Authorization: Bearer or Sec-WebSocket-Protocol"
                .into(),
        }),
        (Some(p), true) => verifier.verify(&p.token, token::now_ms()),
    };
    let principal = match verified {
        Ok(p) => p,
        Err(e) => {
            app.metrics.upgrades_refused.inc();
            return unauthorized(e);
        }
    };
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    if let Some(refused) = admission::refuse_capacity(&app) {
        return refused;
    }
    let mut upgrade = ws::configure(upgrade, &app);
    if let Some(protocol) = presented.and_then(|p| p.select_protocol) {
        upgrade = upgrade.protocols([protocol]);
    }
    let tracker = app.sockets.clone();
    upgrade.on_upgrade(move |socket| tracker.track_future(run(app, socket, principal)))
}

/// 401 with `{"error": code, "message": ...}` and an RFC 6750 challenge.
fn unauthorized(e: AuthError) -> Response {
    client_auth::Refusal::from(e).into_response()
}

/// The socket's life: a plain function returning an `async move` block (an `async fn` keeps
/// every argument twice in the task's state, for the socket's whole life).
#[allow(clippy::manual_async_fn)]
fn run(
    app: ChannelsState,
    mut socket: WebSocket,
    principal: Principal,
) -> impl std::future::Future<Output = ()> + Send {
    async move {
        let _open = crate::metrics::OpenSocket::new(&app.metrics.sockets.channels);
        let conn = app.engine.connect(activenow_engine::Liveness::Socket);
        let keep_alive = KeepAlive {
            ping_every: app.settings.channel_ping_interval(),
            idle_timeout: app.settings.channel_idle_timeout(),
        };
        let (user, expires_at_ms) = (principal.user.clone(), principal.expires_at_ms);
        let inbound = ChannelSocket {
            publish_rate: RateLimit::new(app.settings.channel_publish_rate),
            app: &app,
            conn: &conn,
            principal,
            subscriptions: Vec::new(),
        };
        // Channel tokens expire on open sockets too (close 4001), whatever CLIENT_AUTH says.
        let mut inbound = Expiring::with_user(&app, user, expires_at_ms, inbound);
        ws::drive_with(&mut socket, conn.outbox(), &app, &mut inbound, keep_alive).await;
        conn.disconnect().await;
    }
}

struct Subscription {
    room: Room,
    event: String,
}

/// One channel socket: its holder and its subscriptions.
struct ChannelSocket<'a> {
    app: &'a ChannelsState,
    conn: &'a Connection,
    principal: Principal,
    /// At most CHANNEL_MAX_SUBSCRIPTIONS, so a scan is cheaper than a map.
    subscriptions: Vec<Subscription>,
    publish_rate: RateLimit,
}

fn refusal(code: &'static str, message: impl Into<String>) -> Refusal {
    (code, message.into())
}

/// The room of a valid channel name.
fn channel_room(channel: &str) -> Result<Room, Refusal> {
    let invalid = || {
        refusal(
            channel_code::INVALID_CHANNEL,
            "channel names are 2-12 characters: CJK, letters, digits, space, _ or -",
        )
    };
    if !codec::valid_channel(channel) {
        return Err(invalid());
    }
    Ok(codec::room_of(channel))
}

impl ChannelSocket<'_> {
    fn position(&self, room: &Room) -> Option<usize> {
        self.subscriptions.iter().position(|s| &s.room == room)
    }

    async fn subscribe(&mut self, channel: &str, event: String) -> Result<Bytes, Refusal> {
        let room = channel_room(channel)?;
        if let Some(i) = self.position(&room) {
            // Already present: only the event changes; no second join.
            let reply = codec::subscribed(channel, &event);
            self.subscriptions[i].event = event;
            return Ok(reply);
        }
        let max = self.app.settings.channel_max_subscriptions;
        if self.subscriptions.len() >= max {
            return Err(refusal(
                channel_code::TOO_MANY_SUBSCRIPTIONS,
                format!("a socket may subscribe to {max} channels (CHANNEL_MAX_SUBSCRIPTIONS)"),
            ));
        }
        let mut state = State::new();
        if let Some(t) = &self.principal.user_type {
            state.insert("user_type".into(), Value::String(t.clone()));
        }
        let joined = self
            .conn
            .join(
                room.clone(),
                self.principal.user.clone(),
                state,
                self.app.channels.renderer.clone(),
                self.app.settings.channel_limit(),
            )
            .await;
        match joined {
            Ok(_) => {
                let reply = codec::subscribed(channel, &event);
                self.subscriptions.push(Subscription { room, event });
                Ok(reply)
            }
            Err(EngineError::RoomFull { limit }) => Err(refusal(
                channel_code::ROOM_FULL,
                format!("channel {channel:?} already has {limit} subscribers"),
            )),
            Err(e) => {
                tracing::warn!(error = %e, "channel subscribe failed");
                Err(refusal(channel_code::INTERNAL, "subscribe failed; retry"))
            }
        }
    }

    async fn unsubscribe(&mut self, channel: &str) -> Result<Bytes, Refusal> {
        let room = channel_room(channel)?;
        let Some(i) = self.position(&room) else {
            return Err(not_subscribed(channel));
        };
        let sub = self.subscriptions.swap_remove(i);
        if let Err(e) = self.conn.leave(&room).await {
            tracing::warn!(error = %e, "channel unsubscribe failed");
        }
        Ok(codec::unsubscribed(channel, &sub.event))
    }

    async fn publish(
        &mut self,
        channel: &str,
        event: String,
        data: &serde_json::value::RawValue,
    ) -> Result<Option<Bytes>, Refusal> {
        let room = channel_room(channel)?;
        if self.position(&room).is_none() {
            return Err(not_subscribed(channel));
        }
        if let Verdict::Drop(tell) = self.publish_rate.check() {
            self.app.metrics.rate_limited.inc();
            if !tell {
                return Ok(None);
            }
            let rate = self.app.settings.channel_publish_rate;
            return Err(refusal(
                channel_code::RATE_LIMITED,
                format!("more than {rate} publishes per second (CHANNEL_PUBLISH_RATE); dropped"),
            ));
        }
        let max = self.app.settings.channel_max_payload_bytes;
        if data.get().len() > max {
            return Err(refusal(
                channel_code::TOO_LARGE,
                format!("data is larger than {max} bytes (CHANNEL_MAX_PAYLOAD_BYTES); dropped"),
            ));
        }
        let mut data = codec::data_object(data)?;
        // `from` is the server's to set; the renderer writes the publisher's id.
        data.remove("from");
        let publication = Publication {
            event,
            data: Value::Object(data),
            from: Some(self.principal.user.clone()),
            ts_ms: token::now_ms(),
        };
        let exclude = Some(self.conn.id().clone());
        if let Err(e) = self.app.engine.publish(&room, publication, exclude).await {
            tracing::warn!(error = %e, "channel publish failed");
            return Err(refusal(channel_code::INTERNAL, "publish failed; retry"));
        }
        Ok(None)
    }
}

fn not_subscribed(channel: &str) -> Refusal {
    refusal(
        channel_code::NOT_SUBSCRIBED,
        format!("subscribe to {channel:?} first"),
    )
}

impl Inbound for ChannelSocket<'_> {
    async fn on_text(&mut self, text: &str) -> Reply {
        let result = match codec::decode(text) {
            // Boxed: the socket loop keeps `on_text`'s state for the socket's whole life, so
            // the commands that wait on the engine keep theirs only while they run.
            Ok(Command::Subscribe { channel, event }) => {
                Box::pin(self.subscribe(&channel, event)).await.map(Some)
            }
            Ok(Command::Unsubscribe { channel }) => {
                Box::pin(self.unsubscribe(&channel)).await.map(Some)
            }
            Ok(Command::Publish {
                channel,
                event,
                data,
            }) => Box::pin(self.publish(&channel, event, data)).await,
            Err(refused) => Err(refused),
        };
        match result {
            Ok(Some(frame)) => Reply::Frame(frame),
            Ok(None) => Reply::Nothing,
            Err((code, message)) => {
                self.app.metrics.errors.inc();
                Reply::Frame(codec::error(code, &message))
            }
        }
    }

    /// Transport-level errors in this protocol's codes.
    fn error_frame(&self, transport_code: &'static str, message: &str) -> Bytes {
        let code = if transport_code == code::RATE_LIMITED {
            channel_code::RATE_LIMITED
        } else {
            channel_code::BAD_MESSAGE
        };
        codec::error(code, message)
    }
}
