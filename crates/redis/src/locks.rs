//! [`RedisLocks`]: named locks as `SET`-with-`PX` keys, so expiry runs on Redis' clock and
//! every node sees the same holder. Acquire, release and holder are each one Lua script, so
//! "who holds it" and "what to do about it" are read and acted on atomically.

use std::sync::Arc;

use activenow_engine::store::{LockAcquire, LockHolder, LockRelease, LockStore};
use activenow_engine::StoreError;
use async_trait::async_trait;
use fred::clients::Client;
use fred::types::Value;

use crate::error::{protocol, store_error};
use crate::keys::Keys;
use crate::record::{int, text};
use crate::scripts::{eval, Call, Scripts};

/// Longest TTL sent to Redis (about 100 years): `PX` rejects times past its clock's range,
/// and a longer lock would outlive any deployment anyway.
const MAX_TTL_MS: u64 = 100 * 365 * 86_400 * 1_000;

pub struct RedisLocks {
    client: Client,
    keys: Keys,
    scripts: Arc<Scripts>,
}

impl RedisLocks {
    pub(crate) fn new(client: Client, keys: Keys, scripts: Arc<Scripts>) -> RedisLocks {
        RedisLocks {
            client,
            keys,
            scripts,
        }
    }

    async fn run(
        &self,
        script: &fred::types::scripts::Script,
        name: &str,
        args: Vec<String>,
    ) -> Result<Vec<Value>, StoreError> {
        let reply = eval(
            &self.client,
            Call {
                script,
                keys: vec![self.keys.lock(name)],
                args,
            },
        )
        .await
        .map_err(store_error)?;
        Ok(reply.into_array())
    }
}

/// A `PTTL` reply as remaining milliseconds (-1 "no expiry" and -2 "gone" cannot follow a
/// `GET` in the same script for a key always set with `PX`; they read as 0).
fn remaining(v: &Value) -> Result<u64, StoreError> {
    Ok(int(v)?.max(0) as u64)
}

#[async_trait]
impl LockStore for RedisLocks {
    async fn acquire(
        &self,
        name: &str,
        owner: &str,
        ttl_ms: u64,
    ) -> Result<LockAcquire, StoreError> {
        // `PX 0` is an error in Redis: a zero TTL holds for the shortest time it can express.
        let px = ttl_ms.clamp(1, MAX_TTL_MS);
        let f = self
            .run(
                &self.scripts.lock_acquire,
                name,
                vec![owner.to_owned(), px.to_string()],
            )
            .await?;
        match f.as_slice() {
            [ok] if int(ok)? == 1 => Ok(LockAcquire::Acquired { ttl_ms }),
            [no, holder, ttl] if int(no)? == 0 => Ok(LockAcquire::Held(LockHolder {
                owner: text(holder)?,
                ttl_ms: remaining(ttl)?,
            })),
            _ => Err(protocol("lock acquire")),
        }
    }

    async fn release(&self, name: &str, owner: &str) -> Result<LockRelease, StoreError> {
        let f = self
            .run(&self.scripts.lock_release, name, vec![owner.to_owned()])
            .await?;
        match f.as_slice() {
            [code] if int(code)? == 1 => Ok(LockRelease::Released),
            [code] if int(code)? == 0 => Ok(LockRelease::NotHeld),
            [code, holder] if int(code)? == 2 => Ok(LockRelease::HeldByOther(text(holder)?)),
            _ => Err(protocol("lock release")),
        }
    }

    async fn holder(&self, name: &str) -> Result<Option<LockHolder>, StoreError> {
        let f = self
            .run(&self.scripts.lock_holder, name, Vec::new())
            .await?;
        match f.as_slice() {
            [] => Ok(None),
            [holder, ttl] => Ok(Some(LockHolder {
                owner: text(holder)?,
                ttl_ms: remaining(ttl)?,
            })),
            _ => Err(protocol("lock holder")),
        }
    }
}
