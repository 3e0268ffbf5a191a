//! The [`Engine`] handle and the per-connection [`Connection`] handle.
//!
//! A protocol adapter calls [`Engine::connect`] when a socket opens, then joins rooms with an
//! identity, heartbeats, updates state and finally disconnects. The engine
//! - asks the store for each transition (the store decides atomically whether a join is the
//!   identity's first or a leave its last),
//! - publishes every transition through the broker, which brings it to every node's hub,
//! - keeps TTL locally on tokio's monotonic clock: a heartbeat is an atomic store, no backend
//!   call; the reaper expires silent connections and refreshes the live ones in the store in
//!   one batch per tick.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock;
use crate::error::{EngineError, StoreError};
use crate::hub::{Hub, Renderer};
use crate::memory::{shard_of, SHARDS};
use crate::metrics::Metrics;
use crate::model::{
    ConnId, EventKind, Identity, Member, PresenceEvent, Publication, Room, RoomEvent, RoomMessage,
    State,
};
use crate::outbox::{Outbox, OutboxLimits};
use crate::store::{Backend, DailyVisitors, JoinOutcome, MessageSink, UpdateTarget};

mod connection;
mod reassert;
mod snapshot;

pub use connection::Connection;

#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Prefix of the connection ids this node mints; unique per node.
    pub node_id: String,
    /// How long a heartbeat-kept connection stays present without a heartbeat.
    pub presence_ttl: Duration,
    /// How often the reaper runs (expiry, batched liveness refresh, dead-node reaping).
    pub reaper_interval: Duration,
    /// On a shared store: how long a dead node's memberships may linger before any node
    /// reaps them.
    pub reaper_lookback: Duration,
    /// Frames a connection may have waiting before its slow-consumer clock starts.
    pub send_queue_capacity: usize,
    /// Frames a connection may have waiting at most; beyond, it is a slow consumer at once.
    pub send_queue_max: usize,
    /// How long a queue may stay at or above `send_queue_capacity` before its connection is
    /// closed as a slow consumer.
    pub slow_consumer_timeout: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            node_id: "n1".into(),
            presence_ttl: Duration::from_secs(30),
            reaper_interval: Duration::from_secs(1),
            reaper_lookback: Duration::from_secs(60),
            send_queue_capacity: 256,
            send_queue_max: 4096,
            slow_consumer_timeout: Duration::from_secs(5),
        }
    }
}

/// Sees the transitions of one room that *this node's* store calls produced: each transition
/// reaches exactly one node's observers (the store computes it once), so an observer can act on
/// it once cluster-wide (send a webhook). Called synchronously while the transition is
/// published: it must not block (push to a bounded queue).
pub trait TransitionObserver: Send + Sync + 'static {
    fn produced(&self, room: &Room, transition: &PresenceEvent);
}

/// How a connection stays present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// Present while it heartbeats at least once per `ttl` (room sockets with the presence
    /// TTL, Socket.IO, HTTP online status with its own TTL).
    Heartbeat { ttl: Duration },
    /// Present as long as its socket is open (visitor sockets, channels, session waiters).
    Socket,
}

#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

struct Shared {
    config: EngineConfig,
    backend: Backend,
    hub: Arc<Hub>,
    registry: Arc<Registry>,
    /// Serializes hub membership changes with broker (un)subscription per room shard, so a
    /// room's last local leave and a new first join cannot cross.
    subscription_locks: Box<[tokio::sync::Mutex<()>]>,
    seq: AtomicU64,
    last_epoch: AtomicU64,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
    /// Registered once at start-up by the adapters that need them; read per transition (an
    /// uncontended read lock).
    observers: std::sync::RwLock<Vec<(Room, Arc<dyn TransitionObserver>)>>,
}

type ConnMap = HashMap<ConnId, Arc<ConnShared>>;

/// This node's connections, for the reaper, shutdown and remote refreshes.
struct Registry {
    started: Instant,
    shards: Box<[Mutex<ConnMap>]>,
}

impl Registry {
    fn shard(&self, conn: &ConnId) -> MutexGuard<'_, ConnMap> {
        self.shards[shard_of(conn)]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn all(&self) -> Vec<Arc<ConnShared>> {
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
struct EngineSink {
    hub: Arc<Hub>,
    registry: Arc<Registry>,
}

impl MessageSink for EngineSink {
    fn deliver(&self, msg: &RoomMessage) {
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

struct ConnShared {
    id: ConnId,
    /// A socket holds it (false: [`Engine::connect_detached`]); says which gauge counts it.
    socket: bool,
    outbox: Outbox,
    liveness: Liveness,
    /// Milliseconds since the engine started (monotonic) of the last sign of life.
    last_seen_ms: AtomicU64,
    /// `last_seen_ms` as of the previous liveness refresh: a newer one means the store
    /// should hear of it on the next tick.
    refreshed_ms: AtomicU64,
    /// The reaper removed this connection's presence; its next heartbeat rejoins.
    expired: AtomicBool,
    /// An async mutex: membership changes await the store while holding it, which keeps one
    /// connection's joins, leaves and expiry in order.
    memberships: tokio::sync::Mutex<Vec<Membership>>,
}

impl ConnShared {
    fn ttl_ms(&self) -> Option<u64> {
        match self.liveness {
            Liveness::Heartbeat { ttl } => Some(ttl.as_millis() as u64),
            Liveness::Socket => None,
        }
    }
}

struct Membership {
    room: Room,
    identity: Identity,
    state: State,
    limit: Option<u64>,
    /// False after expiry, until the next heartbeat rejoins.
    active: bool,
}

impl Engine {
    /// Starts the engine and its reaper. Call within a tokio runtime.
    pub fn start(config: EngineConfig, backend: Backend) -> Engine {
        let metrics = Arc::new(Metrics::default());
        let hub = Arc::new(Hub::new(metrics.clone()));
        let registry = Arc::new(Registry {
            started: Instant::now(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        });
        backend.broker.attach(Arc::new(EngineSink {
            hub: hub.clone(),
            registry: registry.clone(),
        }));
        let engine = Engine {
            shared: Arc::new(Shared {
                config,
                backend,
                hub,
                registry,
                subscription_locks: (0..SHARDS).map(|_| tokio::sync::Mutex::new(())).collect(),
                seq: AtomicU64::new(0),
                last_epoch: AtomicU64::new(0),
                metrics,
                cancel: CancellationToken::new(),
                observers: std::sync::RwLock::new(Vec::new()),
            }),
        };
        let reaper = engine.clone();
        tokio::spawn(async move { reaper.run_reaper().await });
        engine
    }

    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// `memory` or `redis`.
    pub fn backend_name(&self) -> &'static str {
        self.shared.backend.name
    }

    /// Calls `observer` with every transition of `room` that this node's store calls produce.
    pub fn observe(&self, room: Room, observer: Arc<dyn TransitionObserver>) {
        self.shared
            .observers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push((room, observer));
    }

    /// The online-status record store (for the online-status adapter).
    pub fn online_records(&self) -> &Arc<dyn crate::records::OnlineRecords> {
        &self.shared.backend.online
    }

    /// The push-session store (for the session-push adapter).
    pub fn sessions(&self) -> &Arc<dyn crate::sessions::SessionStore> {
        &self.shared.backend.sessions
    }

    /// Registers a new local connection with a minted id.
    pub fn connect(&self, liveness: Liveness) -> Connection {
        let n = self.shared.seq.fetch_add(1, Ordering::Relaxed);
        let id = ConnId::new(&format!("{}.{n}", self.shared.config.node_id));
        self.connect_with_id(id, liveness)
    }

    /// Registers a new local connection under a protocol's own id (unique cluster-wide).
    pub fn connect_with_id(&self, id: ConnId, liveness: Liveness) -> Connection {
        self.register(id, liveness, true)
    }

    /// Registers presence that no socket holds (an HTTP online-status login kept by
    /// heartbeats): counted in `detached_connections`, not in `connections`, so it never uses
    /// the socket budget (`MAX_CONNECTIONS`) of [`local_connections`](Self::local_connections).
    pub fn connect_detached(&self, liveness: Liveness) -> Connection {
        let n = self.shared.seq.fetch_add(1, Ordering::Relaxed);
        let id = ConnId::new(&format!("{}.{n}", self.shared.config.node_id));
        self.register(id, liveness, false)
    }

    fn register(&self, id: ConnId, liveness: Liveness, socket: bool) -> Connection {
        let conn = Arc::new(ConnShared {
            socket,
            id: id.clone(),
            outbox: Outbox::with_limits(OutboxLimits {
                capacity: self.shared.config.send_queue_capacity,
                max: self.shared.config.send_queue_max,
                timeout: self.shared.config.slow_consumer_timeout,
            }),
            liveness,
            last_seen_ms: AtomicU64::new(self.shared.registry.now_ms()),
            refreshed_ms: AtomicU64::new(0),
            expired: AtomicBool::new(false),
            memberships: tokio::sync::Mutex::new(Vec::new()),
        });
        self.shared.registry.shard(&id).insert(id, conn.clone());
        self.shared.metrics.gauge(socket).inc();
        Connection {
            conn,
            engine: self.clone(),
            disconnected: false,
        }
    }

    /// Connections registered on this node, detached ones (no socket) not included.
    pub fn local_connections(&self) -> u64 {
        self.shared.metrics.connections.get()
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
        self.publish_transitions(room, &events).await;
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

    pub async fn members(&self, room: &Room) -> Result<Vec<Member>, EngineError> {
        Ok(self
            .timed(self.shared.backend.presence.members(room))
            .await?)
    }

    pub async fn count(&self, room: &Room) -> Result<u64, EngineError> {
        Ok(self.timed(self.shared.backend.presence.count(room)).await?)
    }

    /// Every non-empty room and its count, internal rooms included.
    pub async fn room_counts(&self) -> Result<Vec<(Room, u64)>, EngineError> {
        Ok(self
            .timed(self.shared.backend.presence.room_counts())
            .await?)
    }

    /// Today's (UTC) visitor figures: `(date, figures)`.
    pub async fn daily_visitors(&self) -> Result<(String, DailyVisitors), EngineError> {
        let date = clock::utc_date(clock::now_ms());
        let figures = self.timed(self.shared.backend.stats.daily(&date)).await?;
        Ok((date, figures))
    }

    /// Shares this node's history sample with the other nodes; false when the backend
    /// shares none (memory).
    pub async fn record_stats_sample(
        &self,
        sample: &crate::store::StatsSample,
        keep_ms: u64,
    ) -> Result<bool, EngineError> {
        let node = self.shared.config.node_id.as_str();
        Ok(self
            .timed(
                self.shared
                    .backend
                    .stats
                    .record_sample(node, sample, keep_ms),
            )
            .await?)
    }

    /// Every node's history samples since `since_ms`; `None` when the backend shares none.
    pub async fn stats_samples(
        &self,
        since_ms: u64,
    ) -> Result<Option<Vec<(String, crate::store::StatsSample)>>, EngineError> {
        Ok(self
            .timed(self.shared.backend.stats.samples(since_ms))
            .await?)
    }

    /// Whether the backend answers.
    pub async fn ping(&self) -> Result<(), EngineError> {
        Ok(self.timed(self.shared.backend.presence.ping()).await?)
    }

    /// Stops the reaper and removes every presence this node still holds from the backend,
    /// in one batch, broadcasting the leaves.
    pub async fn shutdown(&self) {
        self.shared.cancel.cancel();
        let conns = self.shared.registry.all();
        let mut memberships = Vec::new();
        for conn in &conns {
            let mut ms = conn.memberships.lock().await;
            for m in ms.iter_mut().filter(|m| m.active) {
                m.active = false;
                memberships.push((m.room.clone(), conn.id.clone()));
            }
        }
        self.leave_batch(&memberships).await;
    }

    /// One reaper pass: expire silent connections, refresh live ones in the store, reap what
    /// dead nodes left behind. The reaper task calls it every `reaper_interval`.
    pub async fn reap(&self) {
        if self.shared.backend.presence.take_lost_state() {
            self.reassert().await;
        }
        let now = self.shared.registry.now_ms();
        let mut live = Vec::new();
        let mut heard = Vec::new();
        let mut silent = Vec::new();
        for conn in self.shared.registry.all() {
            if conn.expired.load(Ordering::Relaxed) {
                continue;
            }
            let seen = conn.last_seen_ms.load(Ordering::Relaxed);
            match conn.ttl_ms() {
                Some(ttl) if seen.saturating_add(ttl) <= now => silent.push(conn),
                _ => {
                    if conn.refreshed_ms.swap(seen, Ordering::Relaxed) < seen {
                        heard.push(conn.id.clone());
                    }
                    live.push(conn.id.clone());
                }
            }
        }
        for conn in silent {
            self.expire(&conn, now).await;
        }
        let store = &self.shared.backend.presence;
        if let Err(e) = self.timed(store.touch_conns(&live, &heard)).await {
            tracing::warn!(error = %e, "liveness refresh failed");
        }
        let lookback = self.shared.config.reaper_lookback.as_millis() as u64;
        match self.timed(store.reap(lookback, clock::now_ms())).await {
            Ok(reaped) => {
                for (room, t) in reaped {
                    self.shared.metrics.expirations.inc();
                    self.publish_transitions(&room, std::slice::from_ref(&t))
                        .await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "reaping dead nodes failed"),
        }
    }

    async fn run_reaper(&self) {
        let mut tick = tokio::time::interval(self.shared.config.reaper_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.shared.cancel.cancelled() => return,
                _ = tick.tick() => self.reap().await,
            }
        }
    }

    /// Removes a silent connection's presence; the socket stays open and its next heartbeat
    /// rejoins.
    async fn expire(&self, conn: &Arc<ConnShared>, now: u64) {
        let mut ms = conn.memberships.lock().await;
        // A heartbeat may have landed while we waited for the lock.
        let ttl = conn.ttl_ms().unwrap_or(u64::MAX);
        if conn
            .last_seen_ms
            .load(Ordering::Relaxed)
            .saturating_add(ttl)
            > now
        {
            return;
        }
        conn.expired.store(true, Ordering::Relaxed);
        let mut memberships = Vec::new();
        for m in ms.iter_mut().filter(|m| m.active) {
            m.active = false;
            memberships.push((m.room.clone(), conn.id.clone()));
        }
        drop(ms);
        self.shared
            .metrics
            .expirations
            .add(memberships.len() as u64);
        self.leave_batch(&memberships).await;
    }

    async fn leave_batch(&self, memberships: &[(Room, ConnId)]) {
        if memberships.is_empty() {
            return;
        }
        let store = &self.shared.backend.presence;
        match self.timed(store.leave(memberships, clock::now_ms())).await {
            Ok(transitions) => {
                self.shared.metrics.leaves.add(transitions.len() as u64);
                for (room, t) in transitions {
                    self.publish_transitions(&room, std::slice::from_ref(&t))
                        .await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "leave failed"),
        }
    }

    async fn publish_transitions(&self, room: &Room, transitions: &[PresenceEvent]) {
        {
            let observers = self
                .shared
                .observers
                .read()
                .unwrap_or_else(|e| e.into_inner());
            for (watched, observer) in observers.iter().filter(|(r, _)| r == room) {
                for t in transitions {
                    observer.produced(watched, t);
                }
            }
        }
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

    /// Epochs are wall-clock milliseconds, forced to grow on this node.
    fn next_epoch(&self) -> u64 {
        let now = clock::now_ms();
        let prev = self
            .shared
            .last_epoch
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(now.max(last + 1))
            })
            .unwrap_or(now);
        now.max(prev + 1)
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.shared.backend
    }

    /// Runs one backend call, counting it (and its latency and failure) in the metrics; for
    /// adapters that call their own stores.
    pub async fn timed<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = std::time::Instant::now();
        let result = call.await;
        let m = &self.shared.metrics;
        m.backend_calls.inc();
        m.backend_latency_us
            .add(started.elapsed().as_micros() as u64);
        if result.is_err() {
            m.backend_errors.inc();
        }
        result
    }

    /// Adds a local subscriber, subscribing the broker when it is the room's first here.
    async fn subscribe_local(
        &self,
        room: &Room,
        conn: &ConnShared,
        renderer: &Arc<dyn Renderer>,
    ) -> Result<(), StoreError> {
        let _guard = self.shared.subscription_locks[shard_of(room)].lock().await;
        if self.shared.hub.add(room, &conn.id, &conn.outbox, renderer) {
            if let Err(e) = self.timed(self.shared.backend.broker.subscribe(room)).await {
                self.shared.hub.remove(room, &conn.id);
                return Err(e);
            }
        }
        Ok(())
    }

    async fn unsubscribe_local(&self, room: &Room, conn: &ConnId) {
        let _guard = self.shared.subscription_locks[shard_of(room)].lock().await;
        if self.shared.hub.remove(room, conn) {
            if let Err(e) = self
                .timed(self.shared.backend.broker.unsubscribe(room))
                .await
            {
                tracing::warn!(error = %e, room = %room, "broker unsubscribe failed");
            }
        }
    }

    /// Joins under the connection's membership lock.
    async fn join_locked(
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
                self.publish_transitions(&m.room, std::slice::from_ref(&t))
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
}
