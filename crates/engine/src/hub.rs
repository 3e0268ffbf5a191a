//! Local fan-out: which of this node's connections listen to which room, and delivery of
//! room messages to them.
//!
//! Subscribers of a room are grouped by their protocol's [`Renderer`]: a message is encoded
//! once per protocol present in the room and every socket gets a clone of the same `Bytes`.
//! Rooms live in 64 shards; a delivery locks one shard for the pushes (no await, no I/O), so
//! no lock is global and none is held across an await.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::metrics::Metrics;
use crate::model::{ConnId, Room, RoomEvent, RoomMessage};
use crate::outbox::Outbox;
use crate::shard::{shard_of, SHARDS};
use crate::store::MessageSink;

/// A protocol's encoder. Called once per message per room, not per socket.
pub trait Renderer: Send + Sync + 'static {
    /// Encodes `event` for this protocol's sockets in `room`; `None` when the protocol does not
    /// show it (for instance a second tab's join, for protocols that count identities).
    fn render(&self, room: &Room, event: &RoomEvent) -> Option<Bytes>;

    /// Encodes a room count for protocols that show the count as it changes. Counts coalesce
    /// per socket (see [`Outbox`]). `None`: this protocol shows no counts.
    fn render_count(&self, _room: &Room, _count: u64) -> Option<Bytes> {
        None
    }
}

pub(crate) struct Hub {
    shards: Box<[Mutex<HashMap<Room, LocalRoom>>]>,
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct LocalRoom {
    groups: Vec<Group>,
    /// Newest room version seen here, so a late message never rolls a count back.
    version: u64,
}

struct Group {
    renderer: Arc<dyn Renderer>,
    subscribers: HashMap<ConnId, Outbox>,
}

fn same_renderer(a: &Arc<dyn Renderer>, b: &Arc<dyn Renderer>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

impl Hub {
    pub(crate) fn new(metrics: Arc<Metrics>) -> Hub {
        Hub {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            metrics,
        }
    }

    fn shard(&self, room: &Room) -> MutexGuard<'_, HashMap<Room, LocalRoom>> {
        self.shards[shard_of(room)]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a subscriber; true when it is the room's first on this node (subscribe the broker).
    pub(crate) fn add(
        &self,
        room: &Room,
        conn: &ConnId,
        outbox: &Outbox,
        renderer: &Arc<dyn Renderer>,
    ) -> bool {
        let mut shard = self.shard(room);
        let first = !shard.contains_key(room);
        let local = shard.entry(room.clone()).or_default();
        // A connection listens through one protocol per room: a rejoin with another
        // renderer moves it.
        for group in &mut local.groups {
            if !same_renderer(&group.renderer, renderer) {
                group.subscribers.remove(conn);
            }
        }
        local.groups.retain(|g| !g.subscribers.is_empty());
        let group = match local
            .groups
            .iter_mut()
            .position(|g| same_renderer(&g.renderer, renderer))
        {
            Some(i) => &mut local.groups[i],
            None => {
                local.groups.push(Group {
                    renderer: renderer.clone(),
                    subscribers: HashMap::new(),
                });
                local.groups.last_mut().expect("just pushed")
            }
        };
        group.subscribers.insert(conn.clone(), outbox.clone());
        first
    }

    /// Removes a subscriber; true when the room has no subscriber left on this node.
    pub(crate) fn remove(&self, room: &Room, conn: &ConnId) -> bool {
        let mut shard = self.shard(room);
        let Some(local) = shard.get_mut(room) else {
            return false;
        };
        for group in &mut local.groups {
            group.subscribers.remove(conn);
        }
        local.groups.retain(|g| !g.subscribers.is_empty());
        if local.groups.is_empty() {
            shard.remove(room);
            return true;
        }
        false
    }
}

impl MessageSink for Hub {
    fn deliver(&self, msg: &RoomMessage) {
        let mut shard = self.shard(&msg.room);
        let Some(local) = shard.get_mut(&msg.room) else {
            return;
        };
        let count = match &msg.event {
            RoomEvent::Presence(e) if e.version > local.version => {
                local.version = e.version;
                Some((e.version, e.count))
            }
            _ => None,
        };
        let mut frames = 0u64;
        let mut slow = 0u64;
        for group in &local.groups {
            let frame = group.renderer.render(&msg.room, &msg.event);
            let count_frame =
                count.and_then(|(v, n)| Some((v, n, group.renderer.render_count(&msg.room, n)?)));
            if frame.is_none() && count_frame.is_none() {
                continue;
            }
            for (conn, outbox) in &group.subscribers {
                if msg.exclude.as_ref() == Some(conn) {
                    continue;
                }
                if let Some(frame) = &frame {
                    frames += 1;
                    if outbox.push(frame.clone()).is_err() {
                        slow += 1;
                    }
                }
                if let Some((version, n, frame)) = &count_frame {
                    outbox.offer_count(*version, *n, frame.clone());
                }
            }
        }
        drop(shard);
        self.metrics.frames_out.add(frames);
        self.metrics.slow_consumers.add(slow);
    }
}
