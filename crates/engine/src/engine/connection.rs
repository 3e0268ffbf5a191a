//! Registering a local connection, and the per-connection handle: joins, leaves,
//! heartbeats, updates, re-keying and disconnection of one local connection, each serialized
//! by the connection's membership lock.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use std::sync::atomic::{AtomicBool, AtomicU64};

use super::handle::Engine;
use super::liveness::Liveness;
use super::observer::Cause;
use super::registry::{ConnShared, Membership};
use crate::clock;
use crate::error::EngineError;
use crate::hub::Renderer;
use crate::model::{ConnId, Identity, PresenceEvent, Room, State};
use crate::outbox::{Outbox, OutboxLimits};
use crate::store::UpdateTarget;

/// One local connection. Drop it only after [`Connection::disconnect`]; a dropped connection
/// that was not disconnected is cleaned up in the background.
pub struct Connection {
    pub(super) conn: Arc<ConnShared>,
    pub(super) engine: Engine,
    pub(super) disconnected: bool,
}

impl Engine {
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
            lingering: AtomicBool::new(false),
            kicked: AtomicBool::new(false),
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
}

impl Connection {
    pub fn id(&self) -> &ConnId {
        &self.conn.id
    }

    /// Where this connection's broadcasts wait to be written.
    pub fn outbox(&self) -> &Outbox {
        &self.conn.outbox
    }

    /// Joins `room` as `identity`, subscribing this connection to the room's events first (so
    /// it sees its own join and nothing in between is missed). Joining a room again replaces
    /// the membership (new epoch; a new identity leaves the old one first). With `limit`, a new
    /// identity is refused when the room holds that many.
    pub async fn join(
        &self,
        room: Room,
        identity: Identity,
        state: State,
        renderer: Arc<dyn Renderer>,
        limit: Option<u64>,
    ) -> Result<PresenceEvent, EngineError> {
        // Boxed, like the other rare calls below: an async fn's state is as large as the
        // largest future it awaits, and a socket task keeps its state for its whole life.
        // A join's state (store, broker, hub) would otherwise cost every idle socket ~1 KiB.
        Box::pin(self.join_inner(room, identity, state, renderer, limit)).await
    }

    async fn join_inner(
        &self,
        room: Room,
        identity: Identity,
        state: State,
        renderer: Arc<dyn Renderer>,
        limit: Option<u64>,
    ) -> Result<PresenceEvent, EngineError> {
        let engine = &self.engine;
        let mut ms = self.conn.memberships.lock().await;
        if let Some(i) = ms.iter().position(|m| m.room == room) {
            let old = ms.remove(i);
            if old.active && old.identity != identity {
                engine
                    .leave_batch(&[(room.clone(), self.conn.id.clone())], Cause::Leave)
                    .await;
            }
        }
        engine.subscribe_local(&room, &self.conn, &renderer).await?;
        let membership = Membership {
            room,
            identity,
            state,
            limit,
            active: true,
        };
        match engine.join_locked(&self.conn, &membership).await {
            Ok(t) => {
                // Most connections join one room: room for one, not the four a first push
                // reserves (80 bytes a slot, for the connection's life).
                ms.reserve_exact(1);
                ms.push(membership);
                Ok(t)
            }
            Err(e) => {
                drop(ms);
                engine
                    .unsubscribe_local(&membership.room, &self.conn.id)
                    .await;
                Err(e)
            }
        }
    }

    /// Leaves `room`; false when this connection was not in it.
    pub async fn leave(&self, room: &Room) -> Result<bool, EngineError> {
        Box::pin(self.leave_inner(room)).await
    }

    async fn leave_inner(&self, room: &Room) -> Result<bool, EngineError> {
        let mut ms = self.conn.memberships.lock().await;
        let Some(i) = ms.iter().position(|m| &m.room == room) else {
            return Ok(false);
        };
        let m = ms.remove(i);
        if m.active {
            let cause = self.engine.departure(&self.conn);
            self.engine
                .leave_batch(&[(room.clone(), self.conn.id.clone())], cause)
                .await;
        }
        drop(ms);
        self.engine.unsubscribe_local(room, &self.conn.id).await;
        Ok(true)
    }

    /// A sign of life: refreshes the TTL (an atomic store). If the reaper had expired this
    /// connection, its rooms are joined again.
    pub async fn heartbeat(&self) -> Result<(), EngineError> {
        let engine = &self.engine;
        self.conn
            .last_seen_ms
            .store(engine.shared.registry.now_ms(), Ordering::Relaxed);
        engine.shared.metrics.heartbeats.inc();
        if !self.conn.expired.load(Ordering::Relaxed) {
            return Ok(());
        }
        // Rare, so boxed: the heartbeat future every socket awaits stays small.
        Box::pin(self.rejoin_expired()).await
    }

    async fn rejoin_expired(&self) -> Result<(), EngineError> {
        let engine = &self.engine;
        let mut ms = self.conn.memberships.lock().await;
        if !self.conn.expired.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        for m in ms.iter_mut().filter(|m| !m.active) {
            if let Err(e) = engine.join_locked(&self.conn, m).await {
                // Stay expired, so the next heartbeat tries again (the store may be back).
                self.conn.expired.store(true, Ordering::Relaxed);
                return Err(e);
            }
            m.active = true;
        }
        Ok(())
    }

    /// Whether the reaper removed this connection's presence (until its next heartbeat).
    pub fn is_expired(&self) -> bool {
        self.conn.expired.load(Ordering::Relaxed)
    }

    /// Merges `patch` into this connection's state in `room` and broadcasts the update.
    pub async fn update(&self, room: &Room, patch: &State) -> Result<PresenceEvent, EngineError> {
        Box::pin(self.update_inner(room, patch)).await
    }

    async fn update_inner(&self, room: &Room, patch: &State) -> Result<PresenceEvent, EngineError> {
        let engine = &self.engine;
        let mut ms = self.conn.memberships.lock().await;
        let Some(m) = ms.iter_mut().find(|m| &m.room == room && m.active) else {
            return Err(EngineError::NotMember);
        };
        for (k, v) in patch {
            m.state.insert(k.clone(), v.clone());
        }
        let target = UpdateTarget::Conn(self.conn.id.clone());
        let store = &engine.shared.backend.presence;
        let mut events = engine
            .timed(store.update(room, &target, patch, clock::now_ms()))
            .await?;
        let Some(event) = events.pop() else {
            return Err(EngineError::NotMember);
        };
        engine.shared.metrics.updates.inc();
        engine
            .announce_updates(room, std::slice::from_ref(&event))
            .await;
        Ok(event)
    }

    /// Re-keys every membership of this connection to `identity` (seed 0's `updateSid`):
    /// the old identity leaves (if this was its last connection) and the new one joins.
    pub async fn rekey(&self, identity: Identity) -> Result<(), EngineError> {
        Box::pin(self.rekey_inner(identity)).await
    }

    async fn rekey_inner(&self, identity: Identity) -> Result<(), EngineError> {
        let engine = &self.engine;
        let mut ms = self.conn.memberships.lock().await;
        for m in ms.iter_mut().filter(|m| m.identity != identity) {
            if m.active {
                engine
                    .leave_batch(&[(m.room.clone(), self.conn.id.clone())], Cause::Leave)
                    .await;
            }
            m.identity = identity.clone();
            if m.active {
                engine.join_locked(&self.conn, m).await?;
            }
        }
        Ok(())
    }

    /// The socket closed: leaves every room and unregisters the connection, after the leave
    /// grace when one applies to drops (`EngineConfig::leave_grace`; the memberships linger
    /// meanwhile, see `grace.rs`). A connection a kick named leaves at once.
    pub async fn disconnect(mut self) {
        self.disconnected = true;
        Box::pin(cleanup(self.engine.clone(), self.conn.clone(), true)).await;
    }

    /// Leaves every room at once, whatever the leave grace, and unregisters the connection:
    /// for services whose departures are not page reloads (online status has its own TTL
    /// hand-over, a session waiter its own expiry).
    pub async fn disconnect_now(mut self) {
        self.disconnected = true;
        Box::pin(cleanup(self.engine.clone(), self.conn.clone(), false)).await;
    }
}

async fn cleanup(engine: Engine, conn: Arc<ConnShared>, grace: bool) {
    if grace && engine.linger(&conn).await {
        return;
    }
    let memberships: Vec<Membership> = std::mem::take(&mut *conn.memberships.lock().await);
    let active: Vec<(Room, ConnId)> = memberships
        .iter()
        .filter(|m| m.active)
        .map(|m| (m.room.clone(), conn.id.clone()))
        .collect();
    engine.leave_batch(&active, engine.departure(&conn)).await;
    for m in &memberships {
        engine.unsubscribe_local(&m.room, &conn.id).await;
    }
    if engine
        .shared
        .registry
        .shard(&conn.id)
        .remove(&conn.id)
        .is_some()
    {
        engine.shared.metrics.gauge(conn.socket).dec();
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.disconnected {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(cleanup(self.engine.clone(), self.conn.clone(), true));
        }
    }
}
