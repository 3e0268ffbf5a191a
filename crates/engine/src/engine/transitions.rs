//! Producing and publishing events: joins computed by the store, HTTP-style identity updates,
//! publications, and the hand-off of every transition to the registered observers and the
//! broker.

use std::sync::Arc;

use super::handle::Engine;
use super::observer::{Cause, TransitionObserver};
use super::registry::{ConnShared, Membership};
use crate::clock;
use crate::error::EngineError;
use crate::model::{
    ConnId, Identity, Member, PresenceEvent, Publication, Room, RoomEvent, RoomMessage, State,
};
use crate::store::{JoinOutcome, MessageSink, UpdateTarget};

impl Engine {
    /// Calls `observer` with every transition of `room` that this node's store calls produce.
    pub fn observe(&self, room: Room, observer: Arc<dyn TransitionObserver>) {
        self.shared
            .observers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push((Some(room), observer));
    }

    /// Calls `observer` with every transition of every room (internal ones included) that
    /// this node's store calls produce.
    pub fn observe_all(&self, observer: Arc<dyn TransitionObserver>) {
        self.shared
            .observers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push((None, observer));
    }

    /// Joins under the connection's membership lock.
    pub(super) async fn join_locked(
        &self,
        conn: &ConnShared,
        m: &Membership,
    ) -> Result<PresenceEvent, EngineError> {
        let now = clock::now_ms();
        let member = Member {
            conn: conn.id.clone(),
            identity: m.identity.clone(),
            state: m.state.clone(),
            joined_at_ms: now,
            updated_at_ms: now,
            epoch: self.next_epoch(),
        };
        let store = &self.shared.backend.presence;
        match self.timed(store.join(&m.room, member, m.limit)).await? {
            JoinOutcome::Joined(t) => {
                self.shared.metrics.joins.inc();
                self.publish_transitions(&m.room, std::slice::from_ref(&t), Cause::Join)
                    .await;
                if t.identity_changed && m.room == Room::visitors() {
                    let date = clock::utc_date(t.ts_ms);
                    let stats = &self.shared.backend.stats;
                    if let Err(e) = self
                        .timed(stats.record_visit(&date, &m.identity, t.count))
                        .await
                    {
                        tracing::warn!(error = %e, "recording a visit failed");
                    }
                }
                Ok(t)
            }
            JoinOutcome::Full => Err(EngineError::RoomFull {
                limit: m.limit.unwrap_or(0) as usize,
            }),
        }
    }

    /// Merges `patch` into every connection of `identity` in `room` (the HTTP presence
    /// update) and broadcasts the update. `NotMember` when the identity is not there: an HTTP
    /// caller cannot invent members.
    pub async fn update_identity(
        &self,
        room: &Room,
        identity: &Identity,
        patch: &State,
    ) -> Result<Vec<PresenceEvent>, EngineError> {
        let target = UpdateTarget::Identity(identity.clone());
        let events = self
            .timed(
                self.shared
                    .backend
                    .presence
                    .update(room, &target, patch, clock::now_ms()),
            )
            .await?;
        if events.is_empty() {
            return Err(EngineError::NotMember);
        }
        self.shared.metrics.updates.inc();
        self.announce_updates(room, &events).await;
        Ok(events)
    }

    /// Sends a publication to every subscriber of `room` on every node, but `exclude`.
    pub async fn publish(
        &self,
        room: &Room,
        publication: Publication,
        exclude: Option<ConnId>,
    ) -> Result<(), EngineError> {
        let msg = RoomMessage {
            room: room.clone(),
            event: RoomEvent::Publication(publication),
            exclude,
        };
        self.shared.metrics.events_published.inc();
        self.timed(self.shared.backend.broker.publish(&msg)).await?;
        Ok(())
    }

    /// Delivers `event` to this node's subscribers of `room` only (no broker, no other node),
    /// rendered once per protocol present: for events a protocol derives on every node from
    /// events every node already saw (Pusher's coalesced subscription counts).
    pub fn deliver_local(&self, room: &Room, event: RoomEvent) {
        self.shared.hub.deliver(&RoomMessage {
            room: room.clone(),
            event,
            exclude: None,
        });
    }

    /// Hands the transitions of a store `update` on: to the observers, and to the broker
    /// unless the store published them already.
    pub(super) async fn announce_updates(&self, room: &Room, transitions: &[PresenceEvent]) {
        if self.shared.backend.presence.publishes_updates() {
            self.notify_observers(room, transitions, Cause::Update);
            self.shared
                .metrics
                .events_published
                .add(transitions.len() as u64);
            return;
        }
        self.publish_transitions(room, transitions, Cause::Update)
            .await;
    }

    fn notify_observers(&self, room: &Room, transitions: &[PresenceEvent], cause: Cause) {
        let observers = self
            .shared
            .observers
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let watching = |r: &Option<Room>| r.as_ref().is_none_or(|r| r == room);
        for (_, observer) in observers.iter().filter(|(r, _)| watching(r)) {
            for t in transitions {
                observer.produced(room, t, cause);
            }
        }
    }

    pub(super) async fn publish_transitions(
        &self,
        room: &Room,
        transitions: &[PresenceEvent],
        cause: Cause,
    ) {
        self.notify_observers(room, transitions, cause);
        for t in transitions {
            let msg = RoomMessage {
                room: room.clone(),
                event: RoomEvent::Presence(t.clone()),
                exclude: None,
            };
            self.shared.metrics.events_published.inc();
            if let Err(e) = self.timed(self.shared.backend.broker.publish(&msg)).await {
                tracing::warn!(error = %e, room = %room, "publishing a transition failed");
            }
        }
    }
}
