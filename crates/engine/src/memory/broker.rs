use std::sync::{Arc, OnceLock};

use async_trait::async_trait;

use crate::error::StoreError;
use crate::model::{Room, RoomMessage};
use crate::store::{Broker, MessageSink};

/// One node: publishing is delivering.
#[derive(Default)]
pub struct MemoryBroker {
    sink: OnceLock<Arc<dyn MessageSink>>,
}

#[async_trait]
impl Broker for MemoryBroker {
    fn attach(&self, sink: Arc<dyn MessageSink>) {
        // A second attach would be a programming error; the first sink stays.
        let _ = self.sink.set(sink);
    }

    async fn subscribe(&self, _room: &Room) -> Result<(), StoreError> {
        Ok(())
    }

    async fn unsubscribe(&self, _room: &Room) -> Result<(), StoreError> {
        Ok(())
    }

    async fn publish(&self, msg: &RoomMessage) -> Result<(), StoreError> {
        if let Some(sink) = self.sink.get() {
            sink.deliver(msg);
        }
        Ok(())
    }
}
