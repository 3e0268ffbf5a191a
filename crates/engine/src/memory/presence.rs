use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::error::StoreError;
use crate::model::{ConnId, EventKind, Identity, Member, PresenceEvent, Room, State};
use crate::shard::{shard_of, SHARDS};
use crate::store::{JoinOutcome, PresenceStore, RoomInfo, Transition, UpdateTarget};

/// One shard of the identity index: identity -> its rooms.
/// The rooms of each identity, sorted. A sorted `Vec`, not a `BTreeSet`: most identities are
/// in one room, and a B-tree's first node holds eleven slots (~190 bytes per identity, for
/// every idle socket); a `Vec` holds one 16-byte slot, and inserts stay cheap at the sizes an
/// identity reaches.
type IdentityRooms = HashMap<Identity, Vec<Room>>;

/// Rooms in 64 shards, each behind a std mutex that is held for a few map operations and
/// never across an await, so a transition is atomic without any global lock.
pub struct MemoryPresence {
    shards: Box<[Mutex<HashMap<Room, RoomState>>]>,
    /// Rooms of each identity, sharded by identity. Changed while the room's shard is held
    /// (lock order: room shard, then identity shard), so it never disagrees with the rooms.
    by_identity: Box<[Mutex<IdentityRooms>]>,
}

impl Default for MemoryPresence {
    fn default() -> Self {
        MemoryPresence {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            by_identity: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

#[derive(Default)]
struct RoomState {
    members: HashMap<ConnId, Member>,
    /// Connections per identity; its length is the room's count.
    identities: HashMap<Identity, u32>,
    /// Bumped by every transition; never reset while the room exists.
    version: u64,
    /// The member pages' order: identity, then connection.
    order: BTreeSet<(Identity, ConnId)>,
    /// When the room's current occupation began.
    since_ms: u64,
}

impl RoomState {
    fn event(
        &mut self,
        kind: EventKind,
        member: Member,
        identity_changed: bool,
        ts_ms: u64,
    ) -> Transition {
        self.version += 1;
        PresenceEvent {
            kind,
            member,
            identity_changed,
            count: self.identities.len() as u64,
            version: self.version,
            ts_ms,
        }
    }

    /// Removes one connection; the identity leaves with its last connection.
    fn remove(&mut self, conn: &ConnId, ts_ms: u64) -> Option<Transition> {
        let member = self.members.remove(conn)?;
        self.order
            .remove(&(member.identity.clone(), member.conn.clone()));
        let last = match self.identities.get_mut(&member.identity) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            _ => {
                self.identities.remove(&member.identity);
                true
            }
        };
        Some(self.event(EventKind::Leave, member, last, ts_ms))
    }
}

impl MemoryPresence {
    fn identity_shard(&self, identity: &Identity) -> MutexGuard<'_, IdentityRooms> {
        self.by_identity[shard_of(identity)]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps the identity index in step with a transition; called with the room's shard held.
    fn index(&self, room: &Room, t: &Transition) {
        if !t.identity_changed || t.kind == EventKind::Update {
            return;
        }
        let identity = &t.member.identity;
        let mut shard = self.identity_shard(identity);
        if t.kind == EventKind::Join {
            let rooms = shard.entry(identity.clone()).or_default();
            if let Err(at) = rooms.binary_search(room) {
                if rooms.is_empty() {
                    // One slot, not the four a first push reserves.
                    rooms.reserve_exact(1);
                }
                rooms.insert(at, room.clone());
            }
        } else if let Some(rooms) = shard.get_mut(identity) {
            if let Ok(at) = rooms.binary_search(room) {
                rooms.remove(at);
            }
            if rooms.is_empty() {
                shard.remove(identity);
            }
        }
    }

    fn shard(&self, room: &Room) -> MutexGuard<'_, HashMap<Room, RoomState>> {
        // A poisoned shard still holds consistent maps: every mutation above completes
        // without panicking points in between.
        self.shards[shard_of(room)]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl PresenceStore for MemoryPresence {
    async fn join(
        &self,
        room: &Room,
        member: Member,
        limit: Option<u64>,
    ) -> Result<JoinOutcome, StoreError> {
        let mut shard = self.shard(room);
        let state = shard.entry(room.clone()).or_default();
        let ts = member.joined_at_ms;
        if let Some(previous) = state.members.get(&member.conn) {
            if previous.identity == member.identity {
                state.members.insert(member.conn.clone(), member.clone());
                return Ok(JoinOutcome::Joined(state.event(
                    EventKind::Join,
                    member,
                    false,
                    ts,
                )));
            }
            // Same connection, other identity: the caller leaves first; be safe anyway.
            let conn = member.conn.clone();
            if let Some(t) = state.remove(&conn, ts) {
                self.index(room, &t);
            }
        }
        let known = state.identities.contains_key(&member.identity);
        if let Some(limit) = limit {
            if !known && state.identities.len() as u64 >= limit {
                if state.members.is_empty() {
                    shard.remove(room);
                }
                return Ok(JoinOutcome::Full);
            }
        }
        if state.members.is_empty() {
            state.since_ms = ts;
        }
        *state.identities.entry(member.identity.clone()).or_insert(0) += 1;
        state.members.insert(member.conn.clone(), member.clone());
        state
            .order
            .insert((member.identity.clone(), member.conn.clone()));
        let t = state.event(EventKind::Join, member, !known, ts);
        self.index(room, &t);
        Ok(JoinOutcome::Joined(t))
    }

    async fn leave(
        &self,
        memberships: &[(Room, ConnId)],
        ts_ms: u64,
    ) -> Result<Vec<(Room, Transition)>, StoreError> {
        let mut out = Vec::with_capacity(memberships.len());
        for (room, conn) in memberships {
            let mut shard = self.shard(room);
            let Some(state) = shard.get_mut(room) else {
                continue;
            };
            if let Some(t) = state.remove(conn, ts_ms) {
                self.index(room, &t);
                out.push((room.clone(), t));
            }
            if state.members.is_empty() {
                shard.remove(room);
            }
        }
        Ok(out)
    }

    async fn update(
        &self,
        room: &Room,
        target: &UpdateTarget,
        patch: &State,
        ts_ms: u64,
    ) -> Result<Vec<Transition>, StoreError> {
        let mut shard = self.shard(room);
        let Some(state) = shard.get_mut(room) else {
            return Ok(Vec::new());
        };
        let conns: Vec<ConnId> = match target {
            UpdateTarget::Conn(conn) => state
                .members
                .contains_key(conn)
                .then(|| conn.clone())
                .into_iter()
                .collect(),
            UpdateTarget::Identity(identity) => state
                .members
                .values()
                .filter(|m| &m.identity == identity)
                .map(|m| m.conn.clone())
                .collect(),
        };
        let mut out = Vec::with_capacity(conns.len());
        for (i, conn) in conns.iter().enumerate() {
            let Some(member) = state.members.get_mut(conn) else {
                continue;
            };
            for (k, v) in patch {
                member.state.insert(k.clone(), v.clone());
            }
            member.updated_at_ms = ts_ms;
            let member = member.clone();
            out.push(state.event(EventKind::Update, member, i == 0, ts_ms));
        }
        Ok(out)
    }

    async fn members(&self, room: &Room) -> Result<Vec<Member>, StoreError> {
        let shard = self.shard(room);
        Ok(shard
            .get(room)
            .map(|s| s.members.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn count(&self, room: &Room) -> Result<u64, StoreError> {
        let shard = self.shard(room);
        Ok(shard.get(room).map_or(0, |s| s.identities.len() as u64))
    }

    async fn room_counts(&self) -> Result<Vec<(Room, u64)>, StoreError> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            out.extend(
                shard
                    .iter()
                    .map(|(room, s)| (room.clone(), s.identities.len() as u64)),
            );
        }
        Ok(out)
    }

    async fn room_info(&self, room: &Room) -> Result<RoomInfo, StoreError> {
        let shard = self.shard(room);
        Ok(shard
            .get(room)
            .map_or_else(RoomInfo::default, |s| RoomInfo {
                count: s.identities.len() as u64,
                connections: s.members.len() as u64,
                since_ms: Some(s.since_ms),
            }))
    }

    async fn identity_rooms(
        &self,
        identity: &Identity,
    ) -> Result<Vec<(Room, Vec<Member>)>, StoreError> {
        let rooms: Vec<Room> = self
            .identity_shard(identity)
            .get(identity)
            .map(|r| r.to_vec())
            .unwrap_or_default();
        let mut out = Vec::with_capacity(rooms.len());
        for room in rooms {
            let shard = self.shard(&room);
            let Some(state) = shard.get(&room) else {
                continue;
            };
            let members: Vec<Member> = state
                .order
                .range((identity.clone(), ConnId::new(""))..)
                .take_while(|(id, _)| id == identity)
                .filter_map(|(_, conn)| state.members.get(conn).cloned())
                .collect();
            if !members.is_empty() {
                out.push((room.clone(), members));
            }
        }
        Ok(out)
    }

    async fn members_page(
        &self,
        room: &Room,
        after: Option<&Identity>,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError> {
        let shard = self.shard(room);
        let Some(state) = shard.get(room) else {
            return Ok(Vec::new());
        };
        let start = match after {
            Some(a) => Bound::Included((a.clone(), ConnId::new(""))),
            None => Bound::Unbounded,
        };
        let mut out = Vec::new();
        let mut identities = 0;
        let mut last: Option<&Identity> = None;
        for (identity, conn) in state.order.range((start, Bound::Unbounded)) {
            if Some(identity) == after {
                continue;
            }
            if last != Some(identity) {
                if identities == limit {
                    break;
                }
                identities += 1;
                last = Some(identity);
            }
            if let Some(m) = state.members.get(conn) {
                out.push(m.clone());
            }
        }
        Ok(out)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
