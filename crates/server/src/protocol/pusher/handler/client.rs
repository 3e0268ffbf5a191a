//! `pusher:signin` (user authentication, joining the user's control room) and client events
//! (`client-*`: who may send them, size and rate limits, the relay through the engine).

use std::sync::Arc;

use activenow_engine::{Identity, Publication, State};
use serde_json::value::RawValue;
use serde_json::Value;

use super::super::codec::{self, ChannelKind, Refusal};
use super::super::terminate::{self, Terminator};
use super::super::{auth, now_ms};
use super::PusherSocket;
use crate::close::pusher_code as code;
use crate::services::webhooks::pusher::client_event as client_event_hook;
use crate::transport::rate::Verdict;
use crate::transport::ws::Reply;

impl PusherSocket<'_> {
    /// `pusher:signin`: a valid signature makes the socket that user (once per socket) and
    /// joins it to the user's control room, through which `terminate_connections` closes it.
    pub(super) async fn signin(&mut self, auth: &str, user_data: &str) -> Reply {
        let socket_id = self.conn.id().as_str();
        if !auth::verify_signin(&self.pusher_app, socket_id, user_data, auth) {
            self.app.metrics.errors.inc();
            return Reply::Close(crate::close::Close::new(
                code::UNAUTHORIZED,
                "Invalid signin signature",
            ));
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

    pub(super) async fn client_event(
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
        let data: Value = serde_json::from_str(raw).unwrap_or(Value::Null);
        let hook = self
            .app
            .webhooks
            .iter()
            .find(|(id, _)| *id == self.pusher_app.id)
            .map(|(_, w)| w);
        // Pusher's webhook carries `data` as a string: a string as sent, other JSON as text.
        let hook_event = hook.map(|w| {
            let text = data.as_str().map_or_else(|| raw.to_owned(), str::to_owned);
            (w, event.clone(), text)
        });
        let publication = Publication {
            event,
            data,
            from: sub.user.clone(),
            ts_ms: now_ms(),
        };
        let room = sub.room.clone();
        let exclude = Some(self.conn.id().clone());
        let user = publication.from.clone();
        if let Err(e) = self.app.engine.publish(&room, publication, exclude).await {
            tracing::warn!(error = %e, "pusher client event failed");
            return Err((code::GENERIC, "client event failed; retry".into()));
        }
        if let Some((w, event, data)) = hook_event {
            client_event_hook(
                w,
                channel,
                &event,
                &data,
                self.conn.id().as_str(),
                user.as_ref().map(Identity::as_str),
            );
        }
        Ok(())
    }
}
