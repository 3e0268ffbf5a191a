//! Named locks in memory, expiring on tokio's monotonic clock (so tests can pause time).
//! Expired locks are dropped lazily when touched and swept when the map grows.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::error::StoreError;
use crate::store::{LockAcquire, LockHolder, LockRelease, LockStore};

#[derive(Default)]
pub struct MemoryLocks {
    // A std mutex: held for a map operation, never across an await. Locks are few and
    // short-lived next to presence traffic, so one map is enough.
    locks: Mutex<Locks>,
}

#[derive(Default)]
struct Locks {
    held: HashMap<String, (String, Instant)>,
    /// Size at the last sweep of expired entries; the next sweep waits for it to double.
    swept_at: usize,
}

impl MemoryLocks {
    fn locks(&self) -> MutexGuard<'_, Locks> {
        self.locks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn remaining(until: Instant, now: Instant) -> u64 {
    until.saturating_duration_since(now).as_millis() as u64
}

#[async_trait]
impl LockStore for MemoryLocks {
    async fn acquire(
        &self,
        name: &str,
        owner: &str,
        ttl_ms: u64,
    ) -> Result<LockAcquire, StoreError> {
        let now = Instant::now();
        let mut locks = self.locks();
        if let Some((holder, until)) = locks.held.get(name) {
            if *until > now && holder != owner {
                return Ok(LockAcquire::Held(LockHolder {
                    owner: holder.clone(),
                    ttl_ms: remaining(*until, now),
                }));
            }
        }
        // A TTL beyond what the clock can represent holds "forever" rather than panicking.
        let until = now
            .checked_add(Duration::from_millis(ttl_ms))
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
        locks
            .held
            .insert(name.to_owned(), (owner.to_owned(), until));
        if locks.held.len() >= 2 * locks.swept_at.max(64) {
            locks.held.retain(|_, (_, until)| *until > now);
            locks.swept_at = locks.held.len();
        }
        Ok(LockAcquire::Acquired { ttl_ms })
    }

    async fn release(&self, name: &str, owner: &str) -> Result<LockRelease, StoreError> {
        let now = Instant::now();
        let mut locks = self.locks();
        match locks.held.get(name) {
            Some((_, until)) if *until <= now => {
                locks.held.remove(name);
                Ok(LockRelease::NotHeld)
            }
            Some((holder, _)) if holder != owner => Ok(LockRelease::HeldByOther(holder.clone())),
            Some(_) => {
                locks.held.remove(name);
                Ok(LockRelease::Released)
            }
            None => Ok(LockRelease::NotHeld),
        }
    }

    async fn holder(&self, name: &str) -> Result<Option<LockHolder>, StoreError> {
        let now = Instant::now();
        let locks = self.locks();
        Ok(locks
            .held
            .get(name)
            .filter(|(_, until)| *until > now)
            .map(|(owner, until)| LockHolder {
                owner: owner.clone(),
                ttl_ms: remaining(*until, now),
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn locks_expire_on_the_paused_clock() {
        let locks = MemoryLocks::default();
        assert_eq!(
            locks.acquire("l", "a", 1000).await.unwrap(),
            LockAcquire::Acquired { ttl_ms: 1000 }
        );
        tokio::time::advance(Duration::from_millis(400)).await;
        assert_eq!(
            locks.acquire("l", "b", 1000).await.unwrap(),
            LockAcquire::Held(LockHolder {
                owner: "a".into(),
                ttl_ms: 600
            })
        );
        tokio::time::advance(Duration::from_millis(600)).await;
        assert_eq!(locks.holder("l").await.unwrap(), None);
        assert_eq!(
            locks.acquire("l", "b", 1000).await.unwrap(),
            LockAcquire::Acquired { ttl_ms: 1000 }
        );
        assert_eq!(
            locks.release("l", "a").await.unwrap(),
            LockRelease::HeldByOther("b".into())
        );
        assert_eq!(
            locks.release("l", "b").await.unwrap(),
            LockRelease::Released
        );
        assert_eq!(locks.release("l", "b").await.unwrap(), LockRelease::NotHeld);
    }
}
