//! Several in-process nodes on one shared in-memory backend: every store is shared and a
//! fan-out broker hands every message to every node, as a cluster on one store would, but
//! through the engine traits only (no Redis needed).

use std::sync::{Arc, Mutex};

use activenow_engine::store::MessageSink;
use activenow_engine::{Backend, Broker, Room, RoomMessage, StoreError};

/// Every published message reaches every attached node, in publish order.
#[derive(Default)]
pub struct FanoutBroker {
    sinks: Mutex<Vec<Arc<dyn MessageSink>>>,
}

#[async_trait::async_trait]
impl Broker for FanoutBroker {
    fn attach(&self, sink: Arc<dyn MessageSink>) {
        self.sinks.lock().unwrap().push(sink);
    }
    async fn subscribe(&self, _room: &Room) -> Result<(), StoreError> {
        Ok(())
    }
    async fn unsubscribe(&self, _room: &Room) -> Result<(), StoreError> {
        Ok(())
    }
    async fn publish(&self, msg: &RoomMessage) -> Result<(), StoreError> {
        let sinks = self.sinks.lock().unwrap().clone();
        for sink in sinks {
            sink.deliver(msg);
        }
        Ok(())
    }
}

/// One backend to give (cloned) to every node of a test cluster. Not named "memory": these
/// nodes share their stores like a cluster does.
pub fn shared_memory_backend() -> Backend {
    Backend {
        name: "shared-memory",
        broker: Arc::new(FanoutBroker::default()),
        ..Backend::memory()
    }
}
