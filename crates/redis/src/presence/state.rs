//! [`RedisPresence`]'s state and the steps its operations share: what this node holds, the
//! leaves waiting for retry, the room index, and running leaves.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use activenow_engine::store::Transition;
use activenow_engine::{ConnId, Identity, Member, Room, StoreError};
use fred::clients::{Client, SubscriberClient};
use fred::interfaces::{ClientLike, KeysInterface, SetsInterface};
use fred::types::Value;

use crate::error::{protocol, store_error};
use crate::keys::Keys;
use crate::options::{RedisOptions, RECONNECT_JITTER_MS, RECONNECT_MAX_DELAY_MS};
use crate::record::{self, int};
use crate::scripts::{eval_all, Call, Scripts};

use super::outage::{Departed, Reconcile};
use super::update_batch::UpdateBatcher;

/// Connections per leave or restore script call (Lua's stack takes a few thousand args).
pub(super) const CONNS_PER_CALL: usize = 500;
/// Failed leaves kept for retry; beyond this they are dropped (with a warning) and left to
/// dead-node reaping.
const PENDING_CAP: usize = 100_000;
/// How long `ping` waits.
pub(super) const PING_TIMEOUT: Duration = Duration::from_secs(2);
const LOCAL_SHARDS: usize = 16;

/// One membership this node holds, with what a leave announced without Redis needs.
pub(super) struct Held {
    pub(super) room: Room,
    pub(super) identity: Identity,
    pub(super) epoch: u64,
}

pub(super) type Local = HashMap<ConnId, Vec<Held>>;

/// The pub/sub subscriber's health: connected, and re-subscribed since its last
/// reconnection (see `watch_subscriber` in the crate root).
pub(crate) struct Listening {
    pub subscriber: SubscriberClient,
    pub resubscribed: Arc<AtomicBool>,
}

impl Listening {
    pub(super) fn is_listening(&self) -> bool {
        self.subscriber.is_connected() && self.resubscribed.load(Ordering::Relaxed)
    }
}

pub struct RedisPresence {
    pub(super) client: Client,
    /// Updates, many per script call (`update_batch.rs`).
    pub(super) updates: UpdateBatcher,
    pub(super) keys: Keys,
    pub(super) scripts: Arc<Scripts>,
    pub(super) node_id: String,
    /// This process's entry in the node registry: the node id plus a random suffix, so a
    /// node restarted under the same id does not keep its dead predecessor alive.
    pub(super) incarnation: String,
    pub(super) lookback_ms: u64,
    pub(super) sweep_every_ms: u64,
    /// Reaper ticks a connection's `seen` refresh is spread over.
    pub(super) touch_turns: u64,
    /// Reaper ticks so far: which turn's connections the next tick refreshes.
    pub(super) touches: AtomicU64,
    /// Set by a reconnection or a lapsed registry entry; taken by the engine's reaper.
    pub(super) lost: Arc<AtomicBool>,
    /// Whether pub/sub works, for `ping`.
    pub(super) listening: Listening,
    /// The first registry tick has happened (before it, a missing entry is a fresh start).
    pub(super) ticked: AtomicBool,
    /// This node's memberships, conn -> rooms: which `seen` entries each tick refreshes.
    pub(super) local: Box<[Mutex<Local>]>,
    /// Leaves that failed or wait for the end of an outage, to retry.
    pub(super) pending: Mutex<Vec<Departed>>,
    /// Leaves of connections that closed while Redis was losing its data, to announce even
    /// though Redis forgot them (`lua/forget.lua`).
    pub(super) orphans: Mutex<Vec<Departed>>,
    /// The data epoch, the live nodes and the outage being reconciled.
    pub(super) recon: Mutex<Reconcile>,
    pub(super) lookback: Duration,
    /// After Redis lost its data, how long a node waits (from Redis answering) for nodes it
    /// could not note before the outage to show up: see [`settle_after_data_loss`].
    pub(super) settle: Duration,
    /// The command the update script publishes its room messages with (`SPUBLISH` on
    /// Redis 7 or later, as the broker subscribes, else `PUBLISH`).
    pub(super) publish: &'static str,
}

/// A node that registered less than one tick before the outage began is in nobody's noted
/// peers, and an empty Redis no longer knows it. Every node alive before the outage
/// reconnects within one capped back-off wait (plus jitter) of Redis answering, and ticks
/// (so shows up in the registry) within a reaper interval after that: one more interval is
/// margin for a busy node.
pub(super) fn settle_after_data_loss(reaper_interval: Duration) -> Duration {
    let reconnect = u64::from(RECONNECT_MAX_DELAY_MS) + u64::from(RECONNECT_JITTER_MS);
    Duration::from_millis(reconnect) + reaper_interval.saturating_mul(2)
}

/// Ticks one `seen` refresh round is spread over: each connection is refreshed at least
/// every quarter of the lookback (plus one tick), far inside the lookback after which a
/// sweep would take it for a dead node's.
pub(super) fn touch_turns(lookback: Duration, reaper_interval: Duration) -> u64 {
    let interval = reaper_interval.as_millis().max(1);
    (lookback.as_millis() / 4 / interval).clamp(1, 64) as u64
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here is a few map operations without panicking points.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A room name as stored in the index (internal rooms included).
pub(super) fn room_from_index(name: String) -> Option<Room> {
    serde_json::from_value(serde_json::Value::String(name)).ok()
}

impl RedisPresence {
    pub(crate) fn new(
        client: Client,
        keys: Keys,
        scripts: Arc<Scripts>,
        options: &RedisOptions,
        lost: Arc<AtomicBool>,
        listening: Listening,
        sharded: bool,
    ) -> RedisPresence {
        let node_id = options.node_id.as_str();
        RedisPresence {
            updates: UpdateBatcher::start(client.clone(), scripts.clone()),
            client,
            keys,
            scripts,
            node_id: node_id.to_owned(),
            incarnation: format!("{node_id}/{:08x}", rand::random::<u32>()),
            lookback_ms: options.lookback.as_millis().max(1) as u64,
            sweep_every_ms: options.reaper_interval.as_millis().max(1) as u64,
            touch_turns: touch_turns(options.lookback, options.reaper_interval),
            touches: AtomicU64::new(0),
            lost,
            listening,
            ticked: AtomicBool::new(false),
            local: (0..LOCAL_SHARDS)
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
            pending: Mutex::new(Vec::new()),
            orphans: Mutex::new(Vec::new()),
            recon: Mutex::new(Reconcile::default()),
            lookback: options.lookback,
            settle: settle_after_data_loss(options.reaper_interval),
            publish: if sharded { "SPUBLISH" } else { "PUBLISH" },
        }
    }

    pub(super) fn local(&self, conn: &ConnId) -> MutexGuard<'_, Local> {
        let mut h = DefaultHasher::new();
        conn.hash(&mut h);
        lock(&self.local[(h.finish() as usize) % LOCAL_SHARDS])
    }

    pub(super) fn local_add(&self, member: &Member, room: &Room) {
        let mut local = self.local(&member.conn);
        let held = local.entry(member.conn.clone()).or_default();
        held.retain(|h| &h.room != room);
        held.push(Held {
            room: room.clone(),
            identity: member.identity.clone(),
            epoch: member.epoch,
        });
    }

    /// Forgets a membership; returns what a leave announced without Redis needs.
    pub(super) fn local_remove(&self, conn: &ConnId, room: &Room) -> Departed {
        let mut local = self.local(conn);
        let mut departed = Departed::new(room.clone(), conn.clone());
        if let Some(held) = local.get_mut(conn) {
            if let Some(i) = held.iter().position(|h| &h.room == room) {
                let h = held.swap_remove(i);
                departed.who = Some((h.identity, h.epoch));
            }
            if held.is_empty() {
                local.remove(conn);
            }
        }
        departed
    }

    /// A (re)join supersedes a leave of the same membership still waiting for retry.
    pub(super) fn cancel_pending(&self, room: &Room, conn: &ConnId) {
        for queue in [&self.pending, &self.orphans] {
            let mut queue = lock(queue);
            if !queue.is_empty() {
                queue.retain(|d| &d.room != room || &d.conn != conn);
            }
        }
    }

    pub(super) fn requeue(&self, failed: Vec<Departed>) {
        if failed.is_empty() {
            return;
        }
        let mut pending = lock(&self.pending);
        let room_left = PENDING_CAP.saturating_sub(pending.len());
        if failed.len() > room_left {
            tracing::warn!(
                dropped = failed.len() - room_left,
                "too many failed leaves waiting; the rest is left to dead-node reaping"
            );
        }
        pending.extend(failed.into_iter().take(room_left));
    }

    pub(super) async fn index(&self, rooms: Vec<String>) -> Result<(), StoreError> {
        if rooms.is_empty() {
            return Ok(());
        }
        self.client
            .sadd::<(), _, _>(self.keys.rooms(), rooms)
            .await
            .map_err(store_error)
    }

    /// Drops emptied rooms from the index; a room that refilled meanwhile goes back in.
    pub(super) async fn unindex(&self, rooms: Vec<Room>) {
        if rooms.is_empty() {
            return;
        }
        let names: Vec<String> = rooms.iter().map(|r| r.as_str().to_owned()).collect();
        if let Err(e) = self
            .client
            .srem::<(), _, _>(self.keys.rooms(), names.clone())
            .await
        {
            tracing::warn!(error = %e, "room index cleanup failed");
            return;
        }
        let pipeline = self.client.pipeline();
        for room in &rooms {
            let _: Result<(), _> = pipeline.exists(self.keys.room(room).members).await;
        }
        let refilled: Vec<String> = pipeline
            .try_all::<i64>()
            .await
            .into_iter()
            .zip(names)
            // On error, put the room back: the index may hold extra rooms, never miss one.
            .filter(|(exists, _)| exists.as_ref().map_or(true, |n| *n > 0))
            .map(|(_, name)| name)
            .collect();
        if let Err(e) = self.index(refilled).await {
            tracing::warn!(error = %e, "room index repair failed");
        }
    }

    /// Runs leaves now: the transitions, and what failed.
    pub(super) async fn leave_now(
        &self,
        memberships: &[(Room, ConnId)],
        ts_ms: u64,
    ) -> (Vec<(Room, Transition)>, Vec<(Room, ConnId)>) {
        let mut by_room: Vec<(Room, Vec<ConnId>)> = Vec::new();
        let mut at: HashMap<&Room, usize> = HashMap::new();
        for (room, conn) in memberships {
            let i = *at.entry(room).or_insert_with(|| {
                by_room.push((room.clone(), Vec::new()));
                by_room.len() - 1
            });
            by_room[i].1.push(conn.clone());
        }
        let mut calls = Vec::new();
        let mut call_rooms = Vec::new();
        for (room, conns) in &by_room {
            for chunk in conns.chunks(CONNS_PER_CALL) {
                calls.push(Call {
                    script: &self.scripts.leave,
                    keys: self.keys.room(room).all(),
                    args: chunk.iter().map(|c| c.as_str().to_owned()).collect(),
                });
                call_rooms.push((room.clone(), chunk.to_vec()));
            }
        }
        let results = eval_all(&self.client, &self.scripts, calls).await;
        let mut out = Vec::new();
        let mut failed = Vec::new();
        let mut emptied = Vec::new();
        for (result, (room, conns)) in results.into_iter().zip(call_rooms) {
            let parsed = result
                .map_err(store_error)
                .and_then(|v| parse_removals(v, ts_ms));
            match parsed {
                Ok((empty, ts)) => {
                    if empty {
                        emptied.push(room.clone());
                    }
                    out.extend(ts.into_iter().map(|t| (room.clone(), t)));
                }
                Err(e) => {
                    tracing::warn!(error = %e, room = %room, "leave failed; will retry");
                    failed.extend(conns.into_iter().map(|c| (room.clone(), c)));
                }
            }
        }
        self.unindex(emptied).await;
        (out, failed)
    }
}

/// `{room_now_empty, {transition...}}`.
pub(super) fn parse_removals(v: Value, ts_ms: u64) -> Result<(bool, Vec<Transition>), StoreError> {
    let mut f = v.into_array();
    if f.len() != 2 {
        return Err(protocol("leave"));
    }
    let empty = int(&f[0])? == 1;
    Ok((empty, record::transitions(f.swap_remove(1), Some(ts_ms))?))
}
