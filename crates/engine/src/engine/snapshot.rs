//! [`Engine::members_seen`]: a room's members with when each was last heard from, for
//! snapshots that show liveness (Socket.IO's `lastSeenMs`).
//!
//! Heartbeats never reach the store one by one. This node knows its own connections' last
//! heartbeat exactly (the registry); a shared store knows the other nodes' connections as of
//! their last batched refresh, which carries every connection heard from since the previous
//! reaper tick, so it is at most one tick stale.

use std::sync::atomic::Ordering;

use crate::clock;
use crate::error::EngineError;
use crate::model::{Member, Room};

use super::handle::Engine;

impl Engine {
    /// `(member, last_seen_ms)` for every member of `room`: wall-clock milliseconds of its
    /// last sign of life (heartbeat, update or join), never before `updated_at_ms`.
    pub async fn members_seen(&self, room: &Room) -> Result<Vec<(Member, u64)>, EngineError> {
        let members = self
            .timed(self.shared.backend.presence.members_seen(room))
            .await?;
        let registry = &self.shared.registry;
        let (wall_now, mono_now) = (clock::now_ms(), registry.now_ms());
        Ok(members
            .into_iter()
            .map(|(member, stored)| {
                let local = registry.shard(&member.conn).get(&member.conn).map(|c| {
                    let ago = mono_now.saturating_sub(c.last_seen_ms.load(Ordering::Relaxed));
                    wall_now.saturating_sub(ago)
                });
                let seen = member
                    .updated_at_ms
                    .max(stored.unwrap_or(0))
                    .max(local.unwrap_or(0));
                (member, seen)
            })
            .collect())
    }
}
