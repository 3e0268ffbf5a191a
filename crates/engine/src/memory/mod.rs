//! The in-memory backend: one node, nothing to set up. Each concern in its own file, like the
//! Redis backend's.

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

/// Shards for the memory maps: enough that two cores rarely contend, few enough to scan.
pub(crate) const SHARDS: usize = 64;

pub(crate) fn shard_of<K: std::hash::Hash + ?Sized>(key: &K) -> usize {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    (BuildHasherDefault::<DefaultHasher>::default().hash_one(key) as usize) % SHARDS
}
