//! Pusher-style webhooks, per Pusher app: `channel_occupied`, `channel_vacated` (any
//! channel), `member_added`, `member_removed` (presence channels, once per user),
//! `subscription_count` (public and private channels of an app with subscription counting),
//! `client_event` (sent by the node that accepted the client event, [`client_event`]) and
//! `cache_miss` (sent by the node that served the subscription, [`cache_miss`]), POSTed as
//! Pusher does: `{"time_ms", "events": [{"name", "channel", "user_id"?}]}` with
//! `X-Pusher-Key` and `X-Pusher-Signature` (hex HMAC-SHA256 of the body under the app
//! secret). Built on the same observer hand-off and sender as the room webhooks, so each
//! event is sent once across nodes, batched under load.
//!
//! A Pusher channel is the engine room `pusher:{app_id}:{channel}`; a presence channel's
//! identities are users, any other channel's are sockets (so its count is its
//! subscriptions). Control channels (`#server-to-user-…`, the sign-in rooms) send nothing.

use std::sync::Arc;

use activenow_engine::{Cause, EventKind, PresenceEvent, Room, TransitionObserver};
use bytes::Bytes;
use serde::Serialize;

use super::sender::Webhooks;

#[derive(Serialize)]
struct PusherEvent<'a> {
    name: &'static str,
    channel: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscription_count: Option<u64>,
}

#[derive(Serialize)]
struct ClientEvent<'a> {
    name: &'static str,
    channel: &'a str,
    event: &'a str,
    data: &'a str,
    socket_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
}

/// Queues Pusher's `client_event` webhook: a client event the node accepted on `channel`
/// (`data` as a string, as Pusher sends it: a string the client sent as is, any other JSON as
/// its text; `user_id` on presence channels). Never waits; dropped and counted when the
/// queue is full.
pub fn client_event(
    w: &Webhooks,
    channel: &str,
    event: &str,
    data: &str,
    socket_id: &str,
    user_id: Option<&str>,
) {
    let event = ClientEvent {
        name: "client_event",
        channel,
        event,
        data,
        socket_id,
        user_id,
    };
    match serde_json::to_vec(&event) {
        Ok(body) => w.enqueue_batched(Bytes::from(body)),
        Err(e) => tracing::warn!(error = %e, "a Pusher client_event webhook could not be encoded"),
    }
}

/// Queues Pusher's `cache_miss` webhook: a subscriber of the cache channel `channel` was
/// told there is no last event. Never waits; dropped and counted when the queue is full.
pub fn cache_miss(w: &Webhooks, channel: &str) {
    send(w, "cache_miss", channel, None, None);
}

/// One app's room prefix (`pusher:{id}:`), its sender, and whether it counts subscriptions
/// (`subscription_count_events`: the `subscription_count` webhook is sent).
pub struct AppHooks {
    pub prefix: String,
    pub webhooks: Webhooks,
    pub subscription_counts: bool,
}

/// The engine observer of every Pusher app that has a webhook URL.
pub struct PusherWebhooks {
    apps: Vec<AppHooks>,
}

impl PusherWebhooks {
    pub fn new(apps: Vec<AppHooks>) -> Option<Arc<PusherWebhooks>> {
        (!apps.is_empty()).then(|| Arc::new(PusherWebhooks { apps }))
    }
}

fn send(
    w: &Webhooks,
    name: &'static str,
    channel: &str,
    user_id: Option<&str>,
    subscription_count: Option<u64>,
) {
    let event = PusherEvent {
        name,
        channel,
        user_id,
        subscription_count,
    };
    match serde_json::to_vec(&event) {
        Ok(body) => w.enqueue_batched(Bytes::from(body)),
        Err(e) => tracing::warn!(error = %e, "a Pusher webhook event could not be encoded"),
    }
}

impl TransitionObserver for PusherWebhooks {
    fn produced(&self, room: &Room, t: &PresenceEvent, _cause: Cause) {
        if !t.identity_changed {
            return;
        }
        let Some((hooks, channel)) = self.apps.iter().find_map(|a| {
            room.as_str()
                .strip_prefix(a.prefix.as_str())
                .map(|c| (a, c))
        }) else {
            return;
        };
        if channel.starts_with('#') {
            return;
        }
        let w = &hooks.webhooks;
        let presence = channel.starts_with("presence-");
        let user = presence.then(|| t.member.identity.as_str());
        // Outside presence channels every socket is its own identity, so the room's count is
        // the channel's subscription count (presence channels count users: Pusher has no
        // subscription count for them either).
        let count = (hooks.subscription_counts && !presence).then_some(t.count);
        match t.kind {
            EventKind::Join => {
                if t.count == 1 {
                    send(w, "channel_occupied", channel, None, None);
                }
                if user.is_some() {
                    send(w, "member_added", channel, user, None);
                }
                if count.is_some() {
                    send(w, "subscription_count", channel, None, count);
                }
            }
            EventKind::Leave => {
                if user.is_some() {
                    send(w, "member_removed", channel, user, None);
                }
                if count.is_some() {
                    send(w, "subscription_count", channel, None, count);
                }
                if t.count == 0 {
                    send(w, "channel_vacated", channel, None, None);
                }
            }
            EventKind::Update => {}
        }
    }
}
