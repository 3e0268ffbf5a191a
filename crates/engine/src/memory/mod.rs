//! The in-memory backend: one node, nothing to set up. Each concern in its own file, like the
//! Redis backend's.

use std::sync::Arc;

use crate::store::Backend;

mod broker;
mod locks;
mod metadata;
mod online;
mod presence;
mod sessions;
mod stats;

pub use broker::MemoryBroker;
pub use locks::MemoryLocks;
pub use metadata::MemoryMetadata;
pub use online::MemoryOnlineRecords;
pub use presence::MemoryPresence;
pub use sessions::MemorySessions;
pub use stats::MemoryVisitorStats;

impl Backend {
    /// The single-node in-memory backend.
    pub fn memory() -> Backend {
        Backend {
            name: "memory",
            presence: Arc::new(MemoryPresence::default()),
            broker: Arc::new(MemoryBroker::default()),
            stats: Arc::new(MemoryVisitorStats::default()),
            metadata: Arc::new(MemoryMetadata::default()),
            locks: Arc::new(MemoryLocks::default()),
            online: Arc::new(MemoryOnlineRecords::default()),
            sessions: Arc::new(MemorySessions::default()),
        }
    }
}
