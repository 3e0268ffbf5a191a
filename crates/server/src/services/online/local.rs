//! This node's share of each player's presence: the HTTP heartbeat connection (one per player
//! per node, refreshed by `POST /api/online/heartbeat`) and the ping sockets open here, so a
//! logout can drop them and the tick can batch the sockets' pings into one record update.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use activenow_engine::{Connection, Identity, Outbox};

const SHARDS: usize = 16;

/// One open ping socket.
pub struct SocketSlot {
    id: u64,
    outbox: Outbox,
    /// A ping arrived since the last tick (its record's lastHeartbeat is due a refresh).
    pub pinged: AtomicBool,
    /// A logout closed this socket; the player must not be kept online after it.
    pub kicked: AtomicBool,
}

#[derive(Default)]
struct Player {
    http: Option<Arc<Connection>>,
    sockets: Vec<Arc<SocketSlot>>,
}

/// Players in 16 shards of std mutexes, each held for a map operation, never across an await.
pub struct Local {
    shards: Box<[Mutex<HashMap<Identity, Player>>]>,
    next_socket: AtomicU64,
}

impl Default for Local {
    fn default() -> Self {
        Local {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            next_socket: AtomicU64::new(0),
        }
    }
}

/// Disconnects a connection nobody else holds; otherwise the last holder's drop cleans up.
pub async fn release(conn: Arc<Connection>) {
    if let Ok(conn) = Arc::try_unwrap(conn) {
        conn.disconnect().await;
    }
}

impl Local {
    fn shard(&self, player: &Identity) -> MutexGuard<'_, HashMap<Identity, Player>> {
        let i = (BuildHasherDefault::<DefaultHasher>::default().hash_one(player) as usize) % SHARDS;
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn http(&self, player: &Identity) -> Option<Arc<Connection>> {
        self.shard(player).get(player).and_then(|p| p.http.clone())
    }

    /// Installs the player's HTTP connection; returns the one it replaces.
    pub fn set_http(&self, player: &Identity, conn: Arc<Connection>) -> Option<Arc<Connection>> {
        self.shard(player)
            .entry(player.clone())
            .or_default()
            .http
            .replace(conn)
    }

    pub fn add_socket(&self, player: &Identity, outbox: Outbox) -> Arc<SocketSlot> {
        let slot = Arc::new(SocketSlot {
            id: self.next_socket.fetch_add(1, Ordering::Relaxed),
            outbox,
            pinged: AtomicBool::new(false),
            kicked: AtomicBool::new(false),
        });
        self.shard(player)
            .entry(player.clone())
            .or_default()
            .sockets
            .push(slot.clone());
        slot
    }

    pub fn remove_socket(&self, player: &Identity, slot: &SocketSlot) {
        let mut shard = self.shard(player);
        if let Some(p) = shard.get_mut(player) {
            p.sockets.retain(|s| s.id != slot.id);
            if p.sockets.is_empty() && p.http.is_none() {
                shard.remove(player);
            }
        }
    }

    /// Closes the player's sockets here and hands back its HTTP connection to release.
    pub fn kick(&self, player: &Identity) -> Option<Arc<Connection>> {
        let mut shard = self.shard(player);
        let p = shard.get_mut(player)?;
        for s in &p.sockets {
            s.kicked.store(true, Ordering::Relaxed);
            s.outbox.finish();
        }
        let http = p.http.take();
        if p.sockets.is_empty() {
            shard.remove(player);
        }
        http
    }

    /// One tick's pass: the players whose sockets pinged since the last pass, and the HTTP
    /// connections that expired while the player has no socket here (to release).
    pub fn tick(&self) -> (Vec<Identity>, Vec<Arc<Connection>>, u64) {
        let mut pinged = Vec::new();
        let mut expired = Vec::new();
        let mut sockets = 0;
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            shard.retain(|player, p| {
                sockets += p.sockets.len() as u64;
                if p.sockets
                    .iter()
                    .any(|s| s.pinged.swap(false, Ordering::Relaxed))
                {
                    pinged.push(player.clone());
                }
                if p.sockets.is_empty() && p.http.as_ref().is_some_and(|c| c.is_expired()) {
                    expired.extend(p.http.take());
                }
                !(p.sockets.is_empty() && p.http.is_none())
            });
        }
        (pinged, expired, sockets)
    }
}
