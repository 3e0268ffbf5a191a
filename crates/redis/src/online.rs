//! Online-status records on Redis (SPEC §7): every node answers the same lookup and list.
//! One hash per player plus an index of online ids (a ZSET with equal scores, read in id
//! order with `ZRANGEBYLEX` for cursor pages) and one of offline ids by removal time; every
//! status change is one call of `lua/online.lua` on the `{o}` slot, so two nodes never both
//! flip a record and an expiry loses to a later heartbeat. `touch` sends its heartbeats in
//! one pipeline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use activenow_engine::records::Login;
use activenow_engine::{Identity, OnlineRecord, OnlineRecords, StoreError};
use async_trait::async_trait;
use fred::clients::Client;
use fred::types::Value;

use crate::error::{protocol, store_error};
use crate::keys::Keys;
use crate::scripts::{eval, eval_all, Call, Scripts};

/// Offline records removed per purge call; the rest go on the next one.
const PURGE_BATCH: usize = 1000;
/// Strings per record in a script reply.
const FIELDS: usize = 7;

pub struct RedisOnlineRecords {
    client: Client,
    keys: Keys,
    scripts: Arc<Scripts>,
    /// Offline records kept at most (0 = no limit), enforced by `off` in the script.
    offline_cap: AtomicU64,
}

impl RedisOnlineRecords {
    pub(crate) fn new(client: Client, keys: Keys, scripts: Arc<Scripts>) -> RedisOnlineRecords {
        RedisOnlineRecords {
            client,
            keys,
            scripts,
            offline_cap: AtomicU64::new(0),
        }
    }

    fn call(&self, player: &str, args: Vec<String>) -> Call<'_> {
        Call {
            script: &self.scripts.online,
            keys: self.keys.online(player),
            args,
        }
    }

    async fn run(&self, player: &str, args: Vec<String>) -> Result<Value, StoreError> {
        eval(&self.client, self.call(player, args))
            .await
            .map_err(store_error)
    }

    async fn one(
        &self,
        player: &str,
        args: Vec<String>,
    ) -> Result<Option<OnlineRecord>, StoreError> {
        let reply = self.run(player, args).await?;
        if reply.is_null() {
            return Ok(None);
        }
        decode(&strings(reply)?).map(Some)
    }

    async fn offline(
        &self,
        player: &Identity,
        before: Option<u64>,
        now_ms: u64,
        retain_ms: u64,
    ) -> Result<Option<OnlineRecord>, StoreError> {
        let id = player.as_str();
        self.one(
            id,
            vec![
                "off".into(),
                id.to_owned(),
                now_ms.to_string(),
                now_ms.saturating_add(retain_ms).to_string(),
                before.map(|b| b.to_string()).unwrap_or_default(),
                self.keys.online_prefix(),
                self.offline_cap.load(Ordering::Relaxed).to_string(),
            ],
        )
        .await
    }
}

fn strings(v: Value) -> Result<Vec<String>, StoreError> {
    v.convert::<Vec<String>>().map_err(store_error)
}

fn ms(s: &str) -> Result<u64, StoreError> {
    s.parse().map_err(|_| protocol("online record time"))
}

/// A record from its 7 strings (see `lua/online.lua`).
fn decode(f: &[String]) -> Result<OnlineRecord, StoreError> {
    let [id, login, hb, ip, name, online, logout] = f else {
        return Err(protocol("online record"));
    };
    Ok(OnlineRecord {
        player: Identity::new(id),
        login_ms: ms(login)?,
        last_heartbeat_ms: ms(hb)?,
        ip: ip.clone(),
        name: name.strip_prefix('=').map(str::to_owned),
        online: online == "1",
        logout_ms: if logout.is_empty() {
            None
        } else {
            Some(ms(logout)?)
        },
    })
}

#[async_trait]
impl OnlineRecords for RedisOnlineRecords {
    async fn login(&self, login: Login<'_>) -> Result<Option<(OnlineRecord, bool)>, StoreError> {
        let id = login.player.as_str();
        let reply = self
            .run(
                id,
                vec![
                    "login".into(),
                    id.to_owned(),
                    login.ip.to_owned(),
                    login.name.map(|n| format!("={n}")).unwrap_or_default(),
                    login.now_ms.to_string(),
                    if login.keep_online { "1" } else { "0" }.into(),
                    login.max_online.to_string(),
                ],
            )
            .await?;
        let f = strings(reply)?;
        let Some((was, rest)) = f.split_first() else {
            return Err(protocol("online login"));
        };
        if was == "full" {
            return Ok(None);
        }
        Ok(Some((decode(rest)?, was == "1")))
    }

    async fn heartbeat(
        &self,
        player: &Identity,
        now_ms: u64,
    ) -> Result<Option<OnlineRecord>, StoreError> {
        let id = player.as_str();
        self.one(id, vec!["hb".into(), id.to_owned(), now_ms.to_string()])
            .await
    }

    async fn touch(&self, players: &[Identity], now_ms: u64) -> Result<(), StoreError> {
        let now = now_ms.to_string();
        let calls = players
            .iter()
            .map(|p| {
                self.call(
                    p.as_str(),
                    vec!["hb".into(), p.as_str().to_owned(), now.clone()],
                )
            })
            .collect();
        for r in eval_all(&self.client, &self.scripts, calls).await {
            r.map_err(store_error)?;
        }
        Ok(())
    }

    async fn logout(
        &self,
        player: &Identity,
        now_ms: u64,
        retain_ms: u64,
    ) -> Result<Option<OnlineRecord>, StoreError> {
        self.offline(player, None, now_ms, retain_ms).await
    }

    async fn expire(
        &self,
        player: &Identity,
        heartbeat_before_ms: u64,
        now_ms: u64,
        retain_ms: u64,
    ) -> Result<Option<OnlineRecord>, StoreError> {
        self.offline(player, Some(heartbeat_before_ms), now_ms, retain_ms)
            .await
    }

    async fn get(
        &self,
        player: &Identity,
        now_ms: u64,
    ) -> Result<Option<OnlineRecord>, StoreError> {
        let id = player.as_str();
        self.one(id, vec!["get".into(), id.to_owned(), now_ms.to_string()])
            .await
    }

    async fn list_online(
        &self,
        after: Option<&Identity>,
        limit: usize,
    ) -> Result<Vec<OnlineRecord>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let reply = self
            .run(
                "",
                vec![
                    "list".into(),
                    self.keys.online_prefix(),
                    after
                        .map(|a| format!("={}", a.as_str()))
                        .unwrap_or_default(),
                    limit.to_string(),
                ],
            )
            .await?;
        strings(reply)?.chunks(FIELDS).map(decode).collect()
    }

    fn set_offline_cap(&self, max: u64) {
        self.offline_cap.store(max, Ordering::Relaxed);
    }

    async fn purge(&self, now_ms: u64) -> Result<(), StoreError> {
        self.run(
            "",
            vec![
                "purge".into(),
                self.keys.online_prefix(),
                now_ms.to_string(),
                PURGE_BATCH.to_string(),
            ],
        )
        .await?;
        Ok(())
    }
}
