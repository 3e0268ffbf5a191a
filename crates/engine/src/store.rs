//! Backend contracts, one trait per concern (presence, broker, visitor statistics; online
//! records in [`crate::records`], push sessions in [`crate::sessions`]).
//!
//! They are shaped for a remote store shared by many nodes: every call is async and may fail
//! with [`StoreError`]; transitions (first connection of an identity joins, last one leaves)
//! are computed atomically *by the store*, so two nodes never both report the same join; and
//! liveness refreshes come in batches, one call per reaper tick, never one per heartbeat.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::metadata::{ChannelKey, ChannelMetadata};
use crate::model::{ConnId, Identity, Member, PresenceEvent, Room, RoomMessage, State};
use crate::records::OnlineRecords;
use crate::sessions::SessionStore;

/// A transition computed by the store. `ts_ms` is the caller's.
pub type Transition = PresenceEvent;

/// What [`PresenceStore::join`] did.
#[derive(Debug)]
pub enum JoinOutcome {
    Joined(Transition),
    /// The room already holds `limit` identities and this one is not among them.
    Full,
}

/// Whose state an update changes.
#[derive(Clone, Debug)]
pub enum UpdateTarget {
    /// One connection (Socket.IO `patchState`).
    Conn(ConnId),
    /// Every connection of one identity (the HTTP presence update).
    Identity(Identity),
}

/// A room's figures (`GET /v1/rooms/{room}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoomInfo {
    /// Distinct identities.
    pub count: u64,
    pub connections: u64,
    /// Wall-clock ms since which the room has been occupied without a break; `None` when
    /// empty, or when a store cannot tell.
    pub since_ms: Option<u64>,
}

/// Membership of rooms. Counts are of distinct identities.
#[async_trait]
pub trait PresenceStore: Send + Sync + 'static {
    /// Adds `member` to `room`, or replaces the membership of the same connection (a rejoin:
    /// state and epoch are the new ones, `identity_changed` is false). `identity_changed` is
    /// true exactly when this is the identity's first connection in the room. With `limit`, a
    /// new identity is refused when the room already holds that many, atomically.
    async fn join(
        &self,
        room: &Room,
        member: Member,
        limit: Option<u64>,
    ) -> Result<JoinOutcome, StoreError>;

    /// Removes memberships; idempotent: a connection that is not (or no longer) a member yields
    /// no transition. `identity_changed` is true when the identity's last connection left.
    async fn leave(
        &self,
        memberships: &[(Room, ConnId)],
        ts_ms: u64,
    ) -> Result<Vec<(Room, Transition)>, StoreError>;

    /// Merges `patch` (top-level keys replace) into the state of the target's connections in
    /// `room` and stamps `updated_at_ms`. Empty when the target is not present. Exactly one of
    /// the transitions has `identity_changed` set.
    /// When [`PresenceStore::publishes_updates`] is true, `update` also publishes each
    /// transition (as `RoomEvent::Presence`, no exclusion) to the room on the backend's
    /// broker, in the same step: the engine then only tells its observers.
    async fn update(
        &self,
        room: &Room,
        target: &UpdateTarget,
        patch: &State,
        ts_ms: u64,
    ) -> Result<Vec<Transition>, StoreError>;

    async fn members(&self, room: &Room) -> Result<Vec<Member>, StoreError>;

    /// Distinct identities in `room`.
    async fn count(&self, room: &Room) -> Result<u64, StoreError>;

    /// Every non-empty room with its count (internal rooms included).
    async fn room_counts(&self) -> Result<Vec<(Room, u64)>, StoreError>;

    /// Count, connections and occupied-since of one room, without listing it (an index
    /// read on a shared store, whatever the room's size).
    async fn room_info(&self, room: &Room) -> Result<RoomInfo, StoreError>;

    /// Every room `identity` is in, each with that identity's connections there, from a
    /// per-identity index (never a scan of the rooms). Rooms in name order.
    async fn identity_rooms(
        &self,
        identity: &Identity,
    ) -> Result<Vec<(Room, Vec<Member>)>, StoreError>;

    /// One page of `room`'s members: every connection of the first `limit` identities
    /// ordered after `after` (byte order of the identity; `None`: from the start), grouped
    /// by identity in that order. An identity present for the whole walk is listed exactly
    /// once, whatever joins and leaves happen between pages; one that joins or leaves
    /// meanwhile may or may not be.
    async fn members_page(
        &self,
        room: &Room,
        after: Option<&Identity>,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError>;

    /// Marks these connections (and so all their memberships) alive now, in one batch per
    /// reaper tick. A shared store uses it to tell live connections from those of a dead
    /// node, and may spread the refresh of `live` over several ticks; `heard` (a subset of
    /// `live`: heard from since the previous call) it refreshes now, so the `last seen` of
    /// [`PresenceStore::members_seen`] lags by at most one tick. The memory store needs
    /// nothing.
    async fn touch_conns(&self, _live: &[ConnId], _heard: &[ConnId]) -> Result<(), StoreError> {
        Ok(())
    }

    /// [`PresenceStore::members`], each with the wall-clock milliseconds at which the store
    /// last marked its connection alive (join or [`PresenceStore::touch_conns`]), where it
    /// keeps that. The memory store does not (the engine knows its connections): `None`.
    async fn members_seen(&self, room: &Room) -> Result<Vec<(Member, Option<u64>)>, StoreError> {
        Ok(self
            .members(room)
            .await?
            .into_iter()
            .map(|m| (m, None))
            .collect())
    }

    /// Removes memberships that nobody has touched for `stale_ms` (their node died without
    /// cleaning up) and returns their transitions, each exactly once across all nodes.
    async fn reap(
        &self,
        _stale_ms: u64,
        _ts_ms: u64,
    ) -> Result<Vec<(Room, Transition)>, StoreError> {
        Ok(Vec::new())
    }

    /// Round trip to the store, for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Whether `update` publishes its transitions itself (a shared store that reaches the
    /// broker in the same step, saving a command and a round trip per update). A store
    /// that does is only paired with its own backend's broker. False by default.
    fn publishes_updates(&self) -> bool {
        false
    }

    /// True (once) when the store may have lost memberships this node still holds: a shared
    /// store that reconnected to a restarted server, or whose node looked dead to the others
    /// long enough to be reaped. The engine then calls [`PresenceStore::restore`] with every
    /// live membership. The memory store never loses anything.
    fn take_lost_state(&self) -> bool {
        false
    }

    /// Puts back memberships this node holds (after [`PresenceStore::take_lost_state`]).
    /// Unlike `join`, a membership still present is left as it is and yields no transition;
    /// limits do not apply (the members were admitted before). Returns the transitions of
    /// what was re-added, to announce; a store that knows it lost *all* its data returns
    /// none (every socket saw these members before the loss and never saw them go, so a
    /// second join, or the counts climbing back from 1, would be false). The default joins
    /// each one, for stores that never lose state.
    async fn restore(
        &self,
        items: &[(Room, Member)],
    ) -> Result<Vec<(Room, Transition)>, StoreError> {
        let mut out = Vec::new();
        for (room, member) in items {
            if let JoinOutcome::Joined(t) = self.join(room, member.clone(), None).await? {
                out.push((room.clone(), t));
            }
        }
        Ok(out)
    }
}

/// Receives every message of the rooms this node subscribed to.
pub trait MessageSink: Send + Sync + 'static {
    fn deliver(&self, msg: &RoomMessage);
}

/// Carries room messages to every node that has subscribers in the room (the publishing node
/// included). Messages of one room published by one node arrive in publish order.
#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Sets where incoming messages go; called once, before any subscription.
    fn attach(&self, sink: Arc<dyn MessageSink>);

    /// Starts receiving `room`'s messages. When it returns, any message published afterwards,
    /// on any node, reaches the sink.
    async fn subscribe(&self, room: &Room) -> Result<(), StoreError>;

    async fn unsubscribe(&self, room: &Room) -> Result<(), StoreError>;

    async fn publish(&self, msg: &RoomMessage) -> Result<(), StoreError>;

    /// Whether messages published here reach other nodes (a shared broker). False, the
    /// default, for a single-node broker: nothing published elsewhere can arrive.
    fn shared_across_nodes(&self) -> bool {
        false
    }

    /// Room messages this node never received because it fell behind the broker (they were
    /// dropped before delivery), since start. Zero for a broker that cannot lag.
    fn lost_messages(&self) -> u64 {
        0
    }

    /// Closes the backend's connections at the end of shutdown. The broker holds them: a
    /// shared backend's stores all use the broker's clients. Nothing to close by default.
    async fn close(&self) {}
}

/// Today's figures for the global visitors room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DailyVisitors {
    /// Peak of concurrent visitors.
    pub max: u64,
    /// Distinct visitors.
    pub total: u64,
}

#[async_trait]
pub trait VisitorStats: Send + Sync + 'static {
    /// Records a visitor's arrival on `date` (`YYYY-MM-DD`) with the concurrent count after it:
    /// the peak is an atomic max, the distinct count a set (or a sketch).
    async fn record_visit(
        &self,
        date: &str,
        identity: &Identity,
        concurrent: u64,
    ) -> Result<(), StoreError>;

    async fn daily(&self, date: &str) -> Result<DailyVisitors, StoreError>;

    /// Shares this node's sample of the operator's history (the dashboard's chart) with the
    /// other nodes, and forgets samples whose slot is older than `keep_ms`. Returns false
    /// when this backend shares no history (a single node: its own ring is the history),
    /// which is the default.
    async fn record_sample(
        &self,
        _node: &str,
        _sample: &StatsSample,
        _keep_ms: u64,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// Every node's samples whose slot is at or after `since_ms`, as `(node, sample)`;
    /// `None` when this backend shares no history (the default).
    async fn samples(
        &self,
        _since_ms: u64,
    ) -> Result<Option<Vec<(String, StatsSample)>>, StoreError> {
        Ok(None)
    }
}

/// One node's sample of what the cluster holds, for the operator's history.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSample {
    /// Start of the sample's slot, wall-clock ms: a multiple of the sample interval, so the
    /// samples that the nodes take of one slot line up.
    pub slot_ms: u64,
    /// Visitors, room members and rooms: already the cluster's figures on every node.
    pub visitors: u64,
    pub members: u64,
    pub rooms: u64,
    /// This node's open sockets: the one figure that is summed across nodes.
    pub connections: u64,
}

/// Channel metadata records, one per `(channelType, channelName)`.
///
/// The store only reads and compare-and-sets whole records; the rules of a write live in
/// [`crate::metadata::apply`], so every backend enforces the same ones.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    /// The channel's record; an unknown channel is `ChannelMetadata::default()` (no items,
    /// major revision 0). A record whose items were all removed keeps its major revision.
    async fn get(&self, channel: &ChannelKey) -> Result<ChannelMetadata, StoreError>;

    /// Replaces the record with `next` if and only if its stored major revision is still
    /// `expected_major` (0 for an unknown channel), atomically across nodes (Redis: one Lua
    /// script that compares the stored `majorRevision` and writes the record). Returns false
    /// and changes nothing when another write got there first. `next.major_revision` is
    /// always `expected_major + 1`.
    async fn compare_and_set(
        &self,
        channel: &ChannelKey,
        expected_major: u64,
        next: &ChannelMetadata,
    ) -> Result<bool, StoreError>;
}

/// The holder of a lock and the milliseconds it still holds it for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockHolder {
    pub owner: String,
    pub ttl_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockAcquire {
    /// The caller holds the lock for `ttl_ms` from now.
    Acquired { ttl_ms: u64 },
    /// Someone else holds it.
    Held(LockHolder),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockRelease {
    Released,
    /// Nobody holds it (never taken, released, or expired).
    NotHeld,
    /// Someone else holds it; nothing changed.
    HeldByOther(String),
}

/// Named locks with a time-to-live (the backend's clock decides expiry: tokio's monotonic
/// clock in memory, Redis `PX` on Redis).
#[async_trait]
pub trait LockStore: Send + Sync + 'static {
    /// Takes `name` for `owner` for `ttl_ms` when it is free or expired; when `owner` already
    /// holds it, extends it to `ttl_ms` from now (re-entrant). Atomic across nodes (Redis:
    /// `SET key owner NX PX ttl`, and a Lua compare-then-`PEXPIRE` for the holder's re-entry).
    async fn acquire(
        &self,
        name: &str,
        owner: &str,
        ttl_ms: u64,
    ) -> Result<LockAcquire, StoreError>;

    /// Releases `name` if `owner` holds it, atomically (Redis: Lua compare-and-delete).
    /// Idempotent: releasing a free lock is `NotHeld`.
    async fn release(&self, name: &str, owner: &str) -> Result<LockRelease, StoreError>;

    /// The current holder, `None` when the lock is free or expired (Redis: `GET` + `PTTL`).
    async fn holder(&self, name: &str) -> Result<Option<LockHolder>, StoreError>;
}

/// A complete backend: what the engine is started with.
#[derive(Clone)]
pub struct Backend {
    /// `memory` or `redis`, as `/v1/metrics/online/today` reports it.
    pub name: &'static str,
    pub presence: Arc<dyn PresenceStore>,
    pub broker: Arc<dyn Broker>,
    pub stats: Arc<dyn VisitorStats>,
    pub metadata: Arc<dyn MetadataStore>,
    pub locks: Arc<dyn LockStore>,
    /// Online-status records (HTTP online-status API).
    pub online: Arc<dyn OnlineRecords>,
    /// Push sessions (session push API).
    pub sessions: Arc<dyn SessionStore>,
}

impl Backend {
    /// Whether other nodes share this backend (their transitions, messages and records reach
    /// this node): what a service asks instead of the backend's name.
    pub fn shared_across_nodes(&self) -> bool {
        self.broker.shared_across_nodes()
    }
}
