//! Sharding of the engine's concurrent maps (the connection registry, hub, subscription locks
//! and the memory backend's maps): enough shards that two cores rarely contend, few enough
//! to scan.

pub(crate) const SHARDS: usize = 64;

pub(crate) fn shard_of<K: std::hash::Hash + ?Sized>(key: &K) -> usize {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    (BuildHasherDefault::<DefaultHasher>::default().hash_one(key) as usize) % SHARDS
}
