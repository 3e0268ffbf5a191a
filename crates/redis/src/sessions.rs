//! Push sessions on Redis (SPEC §8): every node sees the same sessions, numbers pushes from
//! one counter and reports each expiry once. One script per operation on the `{s}` slot
//! (`lua/session_*.lua`); the clock is the engine's `now_ms`, as in the memory store, so
//! every node decides expiry with the same rule.

use std::sync::Arc;

use activenow_engine::sessions::EXPIRED;
use activenow_engine::{PushOutcome, SessionPush, SessionState, SessionStore, StoreError};
use async_trait::async_trait;
use fred::clients::Client;
use fred::types::Value;

use crate::error::{protocol, store_error};
use crate::keys::Keys;
use crate::scripts::{eval, Call, Scripts};

/// Sessions the expiry pass handles per call (per tick); the rest wait for the next one.
const EXPIRE_BATCH: usize = 1000;

pub struct RedisSessions {
    client: Client,
    keys: Keys,
    scripts: Arc<Scripts>,
}

impl RedisSessions {
    pub(crate) fn new(client: Client, keys: Keys, scripts: Arc<Scripts>) -> RedisSessions {
        RedisSessions {
            client,
            keys,
            scripts,
        }
    }

    async fn run(
        &self,
        script: &fred::types::scripts::Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<Value, StoreError> {
        eval(&self.client, Call { script, keys, args })
            .await
            .map_err(store_error)
    }
}

fn flag(b: bool) -> String {
    if b { "1" } else { "0" }.to_owned()
}

fn encode_push(p: &SessionPush) -> String {
    format!("{}|{}|{}", p.seq, flag(p.close), p.message)
}

fn decode_push(s: &str) -> Result<SessionPush, StoreError> {
    let mut parts = s.splitn(3, '|');
    let (Some(seq), Some(close), Some(msg)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(protocol("session push"));
    };
    Ok(SessionPush {
        seq: seq.parse().map_err(|_| protocol("session push seq"))?,
        close: close == "1",
        message: serde_json::from_str(msg).map_err(|_| protocol("session push message"))?,
    })
}

fn strings(v: Value) -> Result<Vec<String>, StoreError> {
    v.convert::<Vec<String>>().map_err(store_error)
}

#[async_trait]
impl SessionStore for RedisSessions {
    async fn create(
        &self,
        state: SessionState,
        max_active: u64,
        retain_ms: u64,
    ) -> Result<bool, StoreError> {
        let k = self.keys.session(&state.id);
        let base = SessionState {
            pushes: Vec::new(),
            ..state.clone()
        };
        let base = serde_json::to_string(&base).map_err(|e| StoreError::Protocol(e.to_string()))?;
        let mut args = vec![
            state.id.clone(),
            base,
            state.status.clone(),
            flag(state.finished),
            state.seq.to_string(),
            state.expires_ms.to_string(),
            state.expires_ms.saturating_add(retain_ms).to_string(),
            max_active.to_string(),
        ];
        args.extend(state.pushes.iter().map(encode_push));
        let reply = self
            .run(
                &self.scripts.session_create,
                vec![k.hash, k.pushes, k.index, k.due],
                args,
            )
            .await?;
        Ok(reply.convert::<i64>().map_err(store_error)? == 1)
    }

    async fn get(&self, id: &str) -> Result<Option<SessionState>, StoreError> {
        let k = self.keys.session(id);
        let reply = self
            .run(&self.scripts.session_get, vec![k.hash, k.pushes], vec![])
            .await?;
        if reply.is_null() {
            return Ok(None);
        }
        let f = strings(reply)?;
        if f.len() < 4 {
            return Err(protocol("session get"));
        }
        let mut state: SessionState =
            serde_json::from_str(&f[0]).map_err(|_| protocol("session base"))?;
        state.status = f[1].clone();
        state.finished = f[2] == "1";
        state.seq = f[3].parse().map_err(|_| protocol("session seq"))?;
        state.pushes = f[4..]
            .iter()
            .map(|p| decode_push(p))
            .collect::<Result<_, _>>()?;
        Ok(Some(state))
    }

    async fn push(
        &self,
        id: &str,
        status: &str,
        message: serde_json::Value,
        close: bool,
        now_ms: u64,
        max_pushes: usize,
    ) -> Result<PushOutcome, StoreError> {
        let k = self.keys.session(id);
        let reply = self
            .run(
                &self.scripts.session_push,
                vec![k.hash, k.pushes, k.due],
                vec![
                    id.to_owned(),
                    status.to_owned(),
                    message.to_string(),
                    flag(close),
                    now_ms.to_string(),
                    max_pushes.max(1).to_string(),
                    EXPIRED.to_owned(),
                ],
            )
            .await?;
        let f = strings(reply)?;
        Ok(match f.first().map(String::as_str) {
            Some("notfound") => PushOutcome::NotFound,
            Some("expired") => PushOutcome::Expired,
            Some("finished") => PushOutcome::Finished,
            Some("pushed") if f.len() == 2 => PushOutcome::Pushed(SessionPush {
                seq: f[1].parse().map_err(|_| protocol("session seq"))?,
                message,
                close,
            }),
            _ => return Err(protocol("session push")),
        })
    }

    async fn expire_due(
        &self,
        now_ms: u64,
        message: serde_json::Value,
        max_pushes: usize,
    ) -> Result<Vec<(String, SessionPush)>, StoreError> {
        let reply = self
            .run(
                &self.scripts.session_expire,
                vec![self.keys.sessions_index(), self.keys.sessions_due()],
                vec![
                    self.keys.sessions_prefix(),
                    now_ms.to_string(),
                    message.to_string(),
                    max_pushes.max(1).to_string(),
                    EXPIRED.to_owned(),
                    EXPIRE_BATCH.to_string(),
                ],
            )
            .await?;
        let f = strings(reply)?;
        f.chunks(2)
            .map(|c| match c {
                [id, seq] => Ok((
                    id.clone(),
                    SessionPush {
                        seq: seq.parse().map_err(|_| protocol("session seq"))?,
                        message: message.clone(),
                        close: true,
                    },
                )),
                _ => Err(protocol("session expiry")),
            })
            .collect()
    }

    async fn remove(&self, id: &str) -> Result<bool, StoreError> {
        let k = self.keys.session(id);
        let reply = self
            .run(
                &self.scripts.session_remove,
                vec![k.hash, k.pushes, k.index, k.due],
                vec![id.to_owned()],
            )
            .await?;
        Ok(reply.convert::<i64>().map_err(store_error)? == 1)
    }
}
