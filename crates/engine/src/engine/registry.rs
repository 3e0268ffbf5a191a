//! This node's connections: the sharded registry the reaper, shutdown and remote refreshes
//! walk, each connection's shared state and memberships, and the broker sink that feeds the
//! hub.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::time::Instant;

use super::grace_state::GraceSender;
use super::kick_notice::kicked_conns;
use super::liveness::Liveness;
use crate::hub::Hub;
use crate::model::{ConnId, EventKind, Identity, Publication, Room, RoomEvent, RoomMessage, State};
use crate::outbox::Outbox;
use crate::shard::shard_of;
use crate::store::MessageSink;

type ConnMap = HashMap<ConnId, Arc<ConnShared>>;

/// This node's connections, for the reaper, shutdown and remote refreshes.
pub(super) struct Registry {
    pub(super) started: Instant,
    pub(super) shards: Box<[Mutex<ConnMap>]>,
}

impl Registry {
    pub(super) fn shard(&self, conn: &ConnId) -> MutexGuard<'_, ConnMap> {
        self.shards[shard_of(conn)]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub(super) fn all(&self) -> Vec<Arc<ConnShared>> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            out.extend(shard.values().cloned());
        }
        out
    }
}

/// Delivers broker messages to the hub; an update made anywhere (an HTTP presence update on
/// another node) also refreshes the TTL of the local connection it names.
pub(super) struct EngineSink {
    pub(super) hub: Arc<Hub>,
    pub(super) registry: Arc<Registry>,
    /// Where kicks of lingering connections go (they have no socket to close).
    pub(super) grace: GraceSender,
}

impl MessageSink for EngineSink {
    fn deliver(&self, msg: &RoomMessage) {
        if let RoomEvent::Publication(p) = &msg.event {
            close_kicked(&self.registry, &self.grace, &msg.room, p);
        }
        if let RoomEvent::Presence(e) = &msg.event {
            if e.kind == EventKind::Update {
                if let Some(conn) = self.registry.shard(&e.member.conn).get(&e.member.conn) {
                    conn.last_seen_ms
                        .store(self.registry.now_ms(), Ordering::Relaxed);
                }
            }
        }
        self.hub.deliver(msg);
    }
}

pub(super) struct ConnShared {
    pub(super) id: ConnId,
    /// A socket holds it (false: [`Engine::connect_detached`]); says which gauge counts it.
    pub(super) socket: bool,
    pub(super) outbox: Outbox,
    pub(super) liveness: Liveness,
    /// Milliseconds since the engine started (monotonic) of the last sign of life.
    pub(super) last_seen_ms: AtomicU64,
    /// `last_seen_ms` as of the previous liveness refresh: a newer one means the store
    /// should hear of it on the next tick.
    pub(super) refreshed_ms: AtomicU64,
    /// The reaper removed this connection's presence; its next heartbeat rejoins.
    pub(super) expired: AtomicBool,
    /// Dropped, its memberships kept for the leave grace (see `grace.rs`); still in the
    /// registry so that liveness refreshes, reassert, kicks and shutdown see it.
    pub(super) lingering: AtomicBool,
    /// A kick named this connection: when it drops it leaves at once, and its leaves from
    /// now on report [`Cause::Kicked`](super::observer::Cause::Kicked).
    pub(super) kicked: AtomicBool,
    /// An async mutex: membership changes await the store while holding it, which keeps one
    /// connection's joins, leaves and expiry in order.
    pub(super) memberships: tokio::sync::Mutex<Vec<Membership>>,
}

impl ConnShared {
    pub(super) fn ttl_ms(&self) -> Option<u64> {
        match self.liveness {
            Liveness::Heartbeat { ttl } => Some(ttl.as_millis() as u64),
            Liveness::Socket => None,
        }
    }
}

pub(super) struct Membership {
    pub(super) room: Room,
    pub(super) identity: Identity,
    pub(super) state: State,
    pub(super) limit: Option<u64>,
    /// False after expiry, until the next heartbeat rejoins.
    pub(super) active: bool,
}

/// Closes the kicked connections this node holds; those lingering in the leave grace leave
/// `room` at once (through the grace task: this runs inside the broker's delivery).
fn close_kicked(registry: &Registry, grace: &GraceSender, room: &Room, p: &Publication) {
    for conn in kicked_conns(p) {
        let Some(shared) = registry.shard(&conn).get(&conn).cloned() else {
            continue;
        };
        // `kicked` before reading `lingering`; `Engine::linger` sets them the other way
        // round: whichever comes second sees the other, so no kicked connection lingers.
        shared.kicked.store(true, Ordering::SeqCst);
        shared.outbox.kick();
        if shared.lingering.load(Ordering::SeqCst) {
            grace.kicked(conn, room.clone());
        }
    }
}
