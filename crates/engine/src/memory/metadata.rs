//! Channel metadata in memory: records in 64 shards behind std mutexes, held for one map
//! operation and never across an await, so compare-and-set is atomic without a global lock.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::error::StoreError;
use crate::metadata::{ChannelKey, ChannelMetadata};
use crate::shard::{shard_of, SHARDS};
use crate::store::MetadataStore;

pub struct MemoryMetadata {
    shards: Box<[Mutex<HashMap<ChannelKey, ChannelMetadata>>]>,
}

impl Default for MemoryMetadata {
    fn default() -> Self {
        MemoryMetadata {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

impl MemoryMetadata {
    fn shard(&self, channel: &ChannelKey) -> MutexGuard<'_, HashMap<ChannelKey, ChannelMetadata>> {
        self.shards[shard_of(channel)]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl MetadataStore for MemoryMetadata {
    async fn get(&self, channel: &ChannelKey) -> Result<ChannelMetadata, StoreError> {
        Ok(self
            .shard(channel)
            .get(channel)
            .cloned()
            .unwrap_or_default())
    }

    async fn compare_and_set(
        &self,
        channel: &ChannelKey,
        expected_major: u64,
        next: &ChannelMetadata,
    ) -> Result<bool, StoreError> {
        let mut shard = self.shard(channel);
        let stored = shard.get(channel).map_or(0, |m| m.major_revision);
        if stored != expected_major {
            return Ok(false);
        }
        shard.insert(channel.clone(), next.clone());
        Ok(true)
    }
}
