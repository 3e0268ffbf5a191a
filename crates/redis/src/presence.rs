//! [`RedisPresence`]: membership, counts, liveness and reaping in Redis.
//!
//! Every transition is one Lua script on one room's keys (one slot), so it is atomic across
//! all nodes: two nodes never both see an identity's first join or last leave, and a
//! membership removed by two reapers at once yields its transition to exactly one of them.
//!
//! Keys that span rooms cannot join a room's script in Redis Cluster, so they are kept
//! *conservatively* instead of atomically:
//! - the room index (`{g}:rooms`) is a superset of the non-empty rooms: a join indexes the
//!   room before its script (so dead-node reaping finds it) and again after it when the room
//!   was empty (so an index cleanup racing with it cannot drop it); a leave that empties a
//!   room removes it from the index, then checks the room and puts it back if it refilled.
//! - liveness: each node refreshes the `seen` time (server clock) of its connections, room
//!   by room, and its own entry in the node registry, in one pipeline per reaper tick. A
//!   connection is refreshed on one tick in [`touch_turns`](RedisPresence::touch_turns)
//!   (about every quarter of the lookback), so that one tick's pipeline, which Redis runs
//!   without serving other clients, stays short however many sockets the node holds. A node
//!   whose entry is older than the lookback is dead: every node then sweeps the indexed rooms
//!   for connections not seen for the lookback, and forgets the node once a sweep is complete.
//! - a leave that fails (Redis unreachable) is kept and retried by the reaper, and its
//!   transitions are published then; a join of the same membership cancels it.
//! - a node that finds its registry entry gone or stale (Redis restarted, or it looked dead
//!   long enough to be reaped), or whose client reconnected, reports lost state: the engine
//!   then re-asserts its live memberships with [`PresenceStore::restore`].
//! - after an outage, a node holds back its leaves (and dead-node sweeps) until the nodes
//!   that were alive before it have re-asserted and listen again; when Redis lost its data,
//!   re-assertion is silent and the leaves of connections that closed meanwhile are announced
//!   against the re-asserted rooms (see `reconcile.rs`).

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use activenow_engine::store::{JoinOutcome, PresenceStore, Transition, UpdateTarget};
use activenow_engine::{ConnId, Identity, Member, Room, State, StoreError};
use async_trait::async_trait;
use fred::clients::{Client, SubscriberClient};
use fred::interfaces::{ClientLike, HashesInterface, KeysInterface, SetsInterface};
use fred::types::Value;

use crate::error::{protocol, store_error};
use crate::keys::Keys;
use crate::record::{self, int};
use crate::scripts::{eval, eval_all, Call, Scripts};
use crate::options::RedisOptions;

mod liveness;
mod reconcile;
mod restore;

use reconcile::{Departed, Reconcile};

/// Connections per leave or restore script call (Lua's stack takes a few thousand args).
const CONNS_PER_CALL: usize = 500;
/// Failed leaves kept for retry; beyond this they are dropped (with a warning) and left to
/// dead-node reaping.
const PENDING_CAP: usize = 100_000;
/// How long `ping` waits.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
const LOCAL_SHARDS: usize = 16;

/// One membership this node holds, with what a leave announced without Redis needs.
struct Held {
    room: Room,
    identity: Identity,
    epoch: u64,
}

type Local = HashMap<ConnId, Vec<Held>>;

/// The pub/sub subscriber's health: connected, and re-subscribed since its last
/// reconnection (see `watch_subscriber` in the crate root).
pub(crate) struct Listening {
    pub subscriber: SubscriberClient,
    pub resubscribed: Arc<AtomicBool>,
}

impl Listening {
    fn is_listening(&self) -> bool {
        self.subscriber.is_connected() && self.resubscribed.load(Ordering::Relaxed)
    }
}

pub struct RedisPresence {
    client: Client,
    keys: Keys,
    scripts: Arc<Scripts>,
    node_id: String,
    /// This process's entry in the node registry: the node id plus a random suffix, so a
    /// node restarted under the same id does not keep its dead predecessor alive.
    incarnation: String,
    lookback_ms: u64,
    sweep_every_ms: u64,
    /// Reaper ticks a connection's `seen` refresh is spread over.
    touch_turns: u64,
    /// Reaper ticks so far: which turn's connections the next tick refreshes.
    touches: AtomicU64,
    /// Set by a reconnection or a lapsed registry entry; taken by the engine's reaper.
    lost: Arc<AtomicBool>,
    /// Whether pub/sub works, for `ping`.
    listening: Listening,
    /// The first registry tick has happened (before it, a missing entry is a fresh start).
    ticked: AtomicBool,
    /// This node's memberships, conn -> rooms: which `seen` entries each tick refreshes.
    local: Box<[Mutex<Local>]>,
    /// Leaves that failed or wait for the end of an outage, to retry.
    pending: Mutex<Vec<Departed>>,
    /// Leaves of connections that closed while Redis was losing its data, to announce even
    /// though Redis forgot them (`lua/forget.lua`).
    orphans: Mutex<Vec<Departed>>,
    /// The data epoch, the live nodes and the outage being reconciled.
    recon: Mutex<Reconcile>,
    lookback: Duration,
}

/// Ticks one `seen` refresh round is spread over: each connection is refreshed at least
/// every quarter of the lookback (plus one tick), far inside the lookback after which a
/// sweep would take it for a dead node's.
fn touch_turns(lookback: Duration, reaper_interval: Duration) -> u64 {
    let interval = reaper_interval.as_millis().max(1);
    (lookback.as_millis() / 4 / interval).clamp(1, 64) as u64
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here is a few map operations without panicking points.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A room name as stored in the index (internal rooms included).
fn room_from_index(name: String) -> Option<Room> {
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
    ) -> RedisPresence {
        let node_id = options.node_id.as_str();
        RedisPresence {
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
        }
    }

    fn local(&self, conn: &ConnId) -> MutexGuard<'_, Local> {
        let mut h = DefaultHasher::new();
        conn.hash(&mut h);
        lock(&self.local[(h.finish() as usize) % LOCAL_SHARDS])
    }

    fn local_add(&self, member: &Member, room: &Room) {
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
    fn local_remove(&self, conn: &ConnId, room: &Room) -> Departed {
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
    fn cancel_pending(&self, room: &Room, conn: &ConnId) {
        for queue in [&self.pending, &self.orphans] {
            let mut queue = lock(queue);
            if !queue.is_empty() {
                queue.retain(|d| &d.room != room || &d.conn != conn);
            }
        }
    }

    fn requeue(&self, failed: Vec<Departed>) {
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

    async fn index(&self, rooms: Vec<String>) -> Result<(), StoreError> {
        if rooms.is_empty() {
            return Ok(());
        }
        self.client
            .sadd::<(), _, _>(self.keys.rooms(), rooms)
            .await
            .map_err(store_error)
    }

    /// Drops emptied rooms from the index; a room that refilled meanwhile goes back in.
    async fn unindex(&self, rooms: Vec<Room>) {
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
    async fn leave_now(
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
fn parse_removals(v: Value, ts_ms: u64) -> Result<(bool, Vec<Transition>), StoreError> {
    let mut f = v.into_array();
    if f.len() != 2 {
        return Err(protocol("leave"));
    }
    let empty = int(&f[0])? == 1;
    Ok((empty, record::transitions(f.swap_remove(1), Some(ts_ms))?))
}

#[async_trait]
impl PresenceStore for RedisPresence {
    async fn join(
        &self,
        room: &Room,
        member: Member,
        limit: Option<u64>,
    ) -> Result<JoinOutcome, StoreError> {
        self.cancel_pending(room, &member.conn);
        // Indexed before the script: a node dying right after it leaves a findable room.
        self.index(vec![room.as_str().to_owned()]).await?;
        let reply = eval(
            &self.client,
            Call {
                script: &self.scripts.join,
                keys: self.keys.room(room).all(),
                args: vec![
                    member.conn.as_str().to_owned(),
                    member.identity.as_str().to_owned(),
                    record::encode(&member),
                    limit.unwrap_or(0).to_string(),
                ],
            },
        )
        .await
        .map_err(store_error)?;
        let mut f = reply.into_array();
        if f.first().map(int).transpose()? != Some(1) {
            return Ok(JoinOutcome::Full);
        }
        if f.len() != 3 {
            return Err(protocol("join"));
        }
        let was_empty = int(&f[2])? == 1;
        let t = record::transition(f.swap_remove(1), Some(member.joined_at_ms))?;
        if was_empty {
            // Again after: an index cleanup may have run between the first add and the script.
            self.index(vec![room.as_str().to_owned()]).await?;
        }
        self.local_add(&member, room);
        Ok(JoinOutcome::Joined(t))
    }

    async fn leave(
        &self,
        memberships: &[(Room, ConnId)],
        ts_ms: u64,
    ) -> Result<Vec<(Room, Transition)>, StoreError> {
        let mut departed: Vec<Departed> = memberships
            .iter()
            .map(|(room, conn)| self.local_remove(conn, room))
            .collect();
        if self.reconciling() {
            // Announced once the outage is reconciled, against counts every node re-asserted.
            self.requeue(departed);
            return Ok(Vec::new());
        }
        let (out, failed) = self.leave_now(memberships, ts_ms).await;
        let failed = reconcile::matching(&mut departed, &failed);
        if !failed.is_empty() && out.is_empty() {
            self.requeue(failed);
            return Err(StoreError::Unavailable(
                "leave failed; it is retried by the reaper".into(),
            ));
        }
        self.requeue(failed);
        Ok(out)
    }

    async fn update(
        &self,
        room: &Room,
        target: &UpdateTarget,
        patch: &State,
        ts_ms: u64,
    ) -> Result<Vec<Transition>, StoreError> {
        let (mode, who) = match target {
            UpdateTarget::Conn(c) => ("c", c.as_str()),
            UpdateTarget::Identity(i) => ("i", i.as_str()),
        };
        let patch = serde_json::to_string(&record::encode_patch(patch)).unwrap_or_default();
        let reply = eval(
            &self.client,
            Call {
                script: &self.scripts.update,
                keys: self.keys.room(room).all(),
                args: vec![mode.into(), who.into(), patch, ts_ms.to_string()],
            },
        )
        .await
        .map_err(store_error)?;
        record::transitions(reply, Some(ts_ms))
    }

    async fn members(&self, room: &Room) -> Result<Vec<Member>, StoreError> {
        let all: HashMap<String, String> = self
            .client
            .hgetall(self.keys.room(room).members)
            .await
            .map_err(store_error)?;
        all.iter()
            .map(|(conn, rec)| record::decode(conn, rec))
            .collect()
    }

    async fn members_seen(&self, room: &Room) -> Result<Vec<(Member, Option<u64>)>, StoreError> {
        self.members_with_seen(room).await
    }

    async fn count(&self, room: &Room) -> Result<u64, StoreError> {
        self.client
            .hlen(self.keys.room(room).identities)
            .await
            .map_err(store_error)
    }

    async fn room_counts(&self) -> Result<Vec<(Room, u64)>, StoreError> {
        let names: Vec<String> = self
            .client
            .smembers(self.keys.rooms())
            .await
            .map_err(store_error)?;
        let rooms: Vec<Room> = names.into_iter().filter_map(room_from_index).collect();
        let mut out = Vec::new();
        for chunk in rooms.chunks(1000) {
            let pipeline = self.client.pipeline();
            for room in chunk {
                let _: Result<(), _> = pipeline.hlen(self.keys.room(room).identities).await;
            }
            let counts: Vec<u64> = pipeline.all().await.map_err(store_error)?;
            out.extend(chunk.iter().cloned().zip(counts).filter(|(_, n)| *n > 0));
        }
        Ok(out)
    }

    /// One pipeline: the `seen` refresh of this node's live connections, room by room, then
    /// its registry tick (see `liveness.rs`).
    async fn touch_conns(&self, live: &[ConnId], heard: &[ConnId]) -> Result<(), StoreError> {
        self.touch(live, heard).await
    }

    async fn reap(&self, stale_ms: u64, ts_ms: u64) -> Result<Vec<(Room, Transition)>, StoreError> {
        self.reap_dead(stale_ms, ts_ms).await
    }

    /// Both halves must work: commands, and pub/sub (a node that does not listen would miss
    /// the other nodes' events).
    async fn ping(&self) -> Result<(), StoreError> {
        if !self.listening.is_listening() {
            return Err(StoreError::Unavailable(
                "Redis pub/sub is reconnecting".into(),
            ));
        }
        match tokio::time::timeout(PING_TIMEOUT, self.client.ping::<Value>(None)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(store_error(e)),
            Err(_) => Err(StoreError::Unavailable("Redis did not answer PING".into())),
        }
    }

    fn take_lost_state(&self) -> bool {
        self.lost.swap(false, Ordering::Relaxed)
    }

    async fn restore(
        &self,
        items: &[(Room, Member)],
    ) -> Result<Vec<(Room, Transition)>, StoreError> {
        self.restore_all(items).await
    }
}
