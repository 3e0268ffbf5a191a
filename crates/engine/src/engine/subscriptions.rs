//! Local subscribers and broker subscriptions: a room's first local subscriber subscribes the
//! broker, its last one unsubscribes it, serialized per room shard so they cannot cross.

use std::sync::Arc;

use super::handle::Engine;
use super::registry::ConnShared;
use crate::error::StoreError;
use crate::hub::Renderer;
use crate::model::{ConnId, Room};
use crate::shard::shard_of;

impl Engine {
    /// Adds a local subscriber, subscribing the broker when it is the room's first here.
    pub(super) async fn subscribe_local(
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

    pub(super) async fn unsubscribe_local(&self, room: &Room, conn: &ConnId) {
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
}
