//! Room webhooks: an engine observer of every room that turns this node's identity-level
//! transitions into `room.occupied`, `member.joined`, `member.updated`, `member.left` and
//! `room.vacated` events and queues them on the sender.
//!
//! The engine hands each transition to the observers of the node whose store call produced
//! it, so each event is sent by exactly one node. Every event carries the room's transition
//! counter (`version`): events of one room sent by different nodes can be put in order by the
//! receiver. Internal rooms (the engine's own, the channels protocol's, control rooms) send
//! nothing.

use std::sync::Arc;

use activenow_engine::{Cause, EventKind, PresenceEvent, Room, State, TransitionObserver};
use bytes::Bytes;
use serde::Serialize;

use super::sender::{random_id, Webhooks};

/// One room event as the receiver sees it, inside `{"time_ms", "events": [...]}`.
#[derive(Serialize)]
pub struct RoomEvent<'a> {
    /// Unique per event; retries repeat it, so receivers can drop duplicates.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub room: &'a str,
    /// Wall-clock milliseconds of the transition.
    pub timestamp: u64,
    /// The room's transition counter after this transition (grows with every transition).
    pub version: u64,
    pub data: RoomEventData<'a>,
}

#[derive(Serialize)]
pub struct RoomEventData<'a> {
    pub identity: &'a str,
    /// Identities present after the transition.
    pub count: u64,
    /// Why a member left (`member.left`, `room.vacated`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// The member's state (`member.joined`, `member.updated`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'a State>,
}

/// The `data.reason` of a leave.
pub fn reason(cause: Cause) -> &'static str {
    match cause {
        Cause::Ttl => "ttl",
        Cause::Kicked => "kicked",
        Cause::NodeLost => "node_lost",
        Cause::Shutdown => "shutdown",
        Cause::Leave | Cause::Join | Cause::Update => "leave",
    }
}

/// The engine observer; registered with [`activenow_engine::Engine::observe_all`].
pub struct RoomWebhooks {
    webhooks: Webhooks,
    /// Rooms of a protocol that are not presence (Pusher's `#server-to-user` rooms).
    control: fn(&str) -> bool,
}

impl RoomWebhooks {
    /// `None` when `WEBHOOK_EVENTS` names no room event.
    pub fn new(webhooks: &Webhooks, control: fn(&str) -> bool) -> Option<Arc<RoomWebhooks>> {
        webhooks.filter().wants_room_events().then(|| {
            Arc::new(RoomWebhooks {
                webhooks: webhooks.clone(),
                control,
            })
        })
    }

    fn send(&self, room: &Room, t: &PresenceEvent, kind: &'static str, data: RoomEventData<'_>) {
        if !self.webhooks.filter().wants(kind) {
            return;
        }
        let event = RoomEvent {
            id: random_id(),
            kind,
            room: room.as_str(),
            timestamp: t.ts_ms,
            version: t.version,
            data,
        };
        match serde_json::to_vec(&event) {
            Ok(body) => self.webhooks.enqueue_batched(Bytes::from(body)),
            Err(e) => tracing::warn!(error = %e, "a room event could not be encoded"),
        }
    }
}

impl TransitionObserver for RoomWebhooks {
    fn produced(&self, room: &Room, t: &PresenceEvent, cause: Cause) {
        if !t.identity_changed
            || room.is_internal()
            || (self.control)(room.as_str())
            || !self.webhooks.filter().wants_room(room.as_str())
        {
            return;
        }
        let identity = t.member.identity.as_str();
        let data = |reason, state| RoomEventData {
            identity,
            count: t.count,
            reason,
            state,
        };
        match t.kind {
            EventKind::Join => {
                if t.count == 1 {
                    self.send(room, t, "room.occupied", data(None, None));
                }
                self.send(room, t, "member.joined", data(None, Some(&t.member.state)));
            }
            EventKind::Update => {
                self.send(room, t, "member.updated", data(None, Some(&t.member.state)));
            }
            EventKind::Leave => {
                let why = Some(reason(cause));
                self.send(room, t, "member.left", data(why, None));
                if t.count == 0 {
                    self.send(room, t, "room.vacated", data(why, None));
                }
            }
        }
    }
}
