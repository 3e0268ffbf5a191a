//! `pusher:subscribe` and `pusher:unsubscribe`: the signature check, the engine join (presence
//! channels as the signed user), `member_added`, the members snapshot, `#server-to-user-{id}`
//! and the cache channels' first frame.

use activenow_engine::{EngineError, Identity, Publication, Room, State};
use bytes::Bytes;
use serde_json::{json, Value};

use super::super::auth;
use super::super::cache;
use super::super::codec::{self, ChannelKind};
use super::super::presence::{presence_member, presence_object, refused, SubscriptionRefusal};
use super::{PusherSocket, Subscription};
use crate::transport::ws::Reply;

impl PusherSocket<'_> {
    pub(super) async fn subscribe(
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

    /// `{"presence":{"ids":[...],"hash":{id:user_info},"count":N}}`, one entry per user.
    async fn presence_snapshot(&self, room: &Room) -> Result<Value, EngineError> {
        let members = self.app.engine.members(room).await?;
        Ok(presence_object(&members))
    }

    pub(super) async fn unsubscribe(&mut self, channel: &str) -> Reply {
        if let Some(i) = self.position(channel) {
            let sub = self.subscriptions.swap_remove(i);
            if let Err(e) = self.conn.leave(&sub.room).await {
                tracing::warn!(error = %e, "pusher unsubscribe failed");
            }
        }
        Reply::Nothing
    }
}
