//! The [`Engine`]'s operations on channel metadata and named locks: the pure rules of
//! [`crate::metadata`] run against the [`MetadataStore`](crate::store::MetadataStore) with
//! compare-and-set rounds, and the [`LockStore`](crate::store::LockStore) calls, each timed.

use super::handle::Engine;
use crate::clock;
use crate::error::StoreError;
use crate::metadata::{
    apply, validate, ChannelKey, ChannelMetadata, MetadataChange, MetadataError, MetadataLimits,
    MetadataWrite,
};
use crate::store::{LockAcquire, LockHolder, LockRelease};

/// Compare-and-set rounds before a write gives up (only under pathological contention:
/// each lost round means another write succeeded).
const MAX_CAS_ROUNDS: usize = 64;

impl Engine {
    /// A channel's record (empty, major revision 0, when unknown).
    pub async fn metadata(&self, channel: &ChannelKey) -> Result<ChannelMetadata, MetadataError> {
        Ok(self.timed(self.backend().metadata.get(channel)).await?)
    }

    /// Validates, checks the lock, and applies `write` with compare-and-set rounds. Does not
    /// broadcast: the caller renders the change event in its protocol and publishes it.
    pub async fn write_metadata(
        &self,
        channel: &ChannelKey,
        write: &MetadataWrite,
        limits: &MetadataLimits,
    ) -> Result<MetadataChange, MetadataError> {
        validate(write, limits)?;
        if let Some(lock) = &write.lock_name {
            self.check_lock(lock, write.actor.as_deref()).await?;
        }
        let store = &self.backend().metadata;
        for _ in 0..MAX_CAS_ROUNDS {
            let current = self.timed(store.get(channel)).await?;
            let ts_ms = clock::now_ms();
            let Some((next, items)) = apply(&current, write, ts_ms, limits)? else {
                return Ok(MetadataChange {
                    metadata: current,
                    items: Vec::new(),
                    changed: false,
                    ts_ms,
                });
            };
            let stored = self
                .timed(store.compare_and_set(channel, current.major_revision, &next))
                .await?;
            if stored {
                return Ok(MetadataChange {
                    metadata: next,
                    items,
                    changed: true,
                    ts_ms,
                });
            }
        }
        Err(MetadataError::Conflict(
            "channel metadata changed too often while writing; retry".into(),
        ))
    }

    async fn check_lock(&self, lock: &str, actor: Option<&str>) -> Result<(), MetadataError> {
        let holder = self.timed(self.backend().locks.holder(lock)).await?;
        match (holder, actor) {
            (None, _) => Err(MetadataError::Lock(format!(
                "Lock \"{lock}\" is not held by any user"
            ))),
            (Some(_), None) => Err(MetadataError::Lock(format!(
                "Lock \"{lock}\" requires an authenticated user"
            ))),
            (Some(h), Some(actor)) if h.owner != actor => Err(MetadataError::Lock(format!(
                "Lock \"{lock}\" is held by a different user"
            ))),
            _ => Ok(()),
        }
    }

    /// Takes (or, for its holder, extends) a named lock.
    pub async fn acquire_lock(
        &self,
        name: &str,
        owner: &str,
        ttl_ms: u64,
    ) -> Result<LockAcquire, StoreError> {
        self.timed(self.backend().locks.acquire(name, owner, ttl_ms))
            .await
    }

    pub async fn release_lock(&self, name: &str, owner: &str) -> Result<LockRelease, StoreError> {
        self.timed(self.backend().locks.release(name, owner)).await
    }

    pub async fn lock_holder(&self, name: &str) -> Result<Option<LockHolder>, StoreError> {
        self.timed(self.backend().locks.holder(name)).await
    }
}
