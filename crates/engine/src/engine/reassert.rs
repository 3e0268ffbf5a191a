//! [`Engine::reassert`]: putting this node's live memberships back into a store that may
//! have lost them (a restarted Redis, or this node looked dead to the others).

use crate::clock;
use crate::model::Member;

use super::handle::Engine;
use super::observer::Cause;

impl Engine {
    /// Puts every live membership of this node back into the store, after the store reported
    /// it may have lost them (a restarted Redis, or this node looked dead to the others).
    /// Memberships still present stay as they are; re-added ones are broadcast as joins
    /// (unless the store lost everything, see [`crate::store::PresenceStore::restore`]), so counts
    /// converge on every node. Each batch holds its connections' membership locks, so
    /// a connection leaving meanwhile is never re-added behind its back. The store re-reports
    /// the loss when a batch fails, and the next reaper tick tries again.
    pub async fn reassert(&self) {
        const BATCH: usize = 256;
        let conns = self.shared.registry.all();
        for chunk in conns.chunks(BATCH) {
            let mut guards = Vec::with_capacity(chunk.len());
            let mut items = Vec::new();
            for conn in chunk {
                let ms = conn.memberships.lock().await;
                for m in ms.iter().filter(|m| m.active) {
                    let now = clock::now_ms();
                    let member = Member {
                        conn: conn.id.clone(),
                        identity: m.identity.clone(),
                        state: m.state.clone(),
                        joined_at_ms: now,
                        updated_at_ms: now,
                        epoch: self.next_epoch(),
                    };
                    items.push((m.room.clone(), member));
                }
                guards.push(ms);
            }
            if items.is_empty() {
                continue;
            }
            let store = &self.shared.backend.presence;
            match self.timed(store.restore(&items)).await {
                Ok(restored) => {
                    self.shared.metrics.joins.add(restored.len() as u64);
                    for (room, t) in restored {
                        self.publish_transitions(&room, std::slice::from_ref(&t), Cause::Join)
                            .await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "re-asserting memberships failed"),
            }
            drop(guards);
        }
    }
}
