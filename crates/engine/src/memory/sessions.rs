//! Push sessions in memory: one map behind a std mutex held for a few map operations, never
//! across an await.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::error::StoreError;
use crate::sessions::{PushOutcome, SessionPush, SessionState, SessionStore, EXPIRED};

#[derive(Default)]
pub struct MemorySessions {
    sessions: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    state: SessionState,
    /// Removed at this wall-clock time.
    drop_at_ms: u64,
}

fn append(
    state: &mut SessionState,
    status: &str,
    message: serde_json::Value,
    close: bool,
    max: usize,
) -> SessionPush {
    state.seq += 1;
    state.status = status.to_owned();
    state.finished |= close;
    let push = SessionPush {
        seq: state.seq,
        message,
        close,
    };
    state.pushes.push(push.clone());
    let max = max.max(1);
    if state.pushes.len() > max {
        let extra = state.pushes.len() - max;
        state.pushes.drain(..extra);
    }
    push
}

impl MemorySessions {
    fn map(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl SessionStore for MemorySessions {
    async fn create(
        &self,
        state: SessionState,
        max_active: u64,
        retain_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut map = self.map();
        if map.len() as u64 >= max_active && !map.contains_key(&state.id) {
            return Ok(false);
        }
        let drop_at_ms = state.expires_ms.saturating_add(retain_ms);
        map.insert(state.id.clone(), Entry { state, drop_at_ms });
        Ok(true)
    }

    async fn get(&self, id: &str) -> Result<Option<SessionState>, StoreError> {
        Ok(self.map().get(id).map(|e| e.state.clone()))
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
        let mut map = self.map();
        let Some(entry) = map.get_mut(id) else {
            return Ok(PushOutcome::NotFound);
        };
        let state = &mut entry.state;
        if state.finished {
            return Ok(if state.status == EXPIRED {
                PushOutcome::Expired
            } else {
                PushOutcome::Finished
            });
        }
        if now_ms >= state.expires_ms {
            return Ok(PushOutcome::Expired);
        }
        Ok(PushOutcome::Pushed(append(
            state, status, message, close, max_pushes,
        )))
    }

    async fn expire_due(
        &self,
        now_ms: u64,
        message: serde_json::Value,
        max_pushes: usize,
    ) -> Result<Vec<(String, SessionPush)>, StoreError> {
        let mut map = self.map();
        map.retain(|_, e| now_ms < e.drop_at_ms);
        let mut out = Vec::new();
        for (id, entry) in map.iter_mut() {
            let state = &mut entry.state;
            if !state.finished && now_ms >= state.expires_ms {
                let push = append(state, EXPIRED, message.clone(), true, max_pushes);
                out.push((id.clone(), push));
            }
        }
        Ok(out)
    }

    async fn remove(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.map().remove(id).is_some())
    }
}
