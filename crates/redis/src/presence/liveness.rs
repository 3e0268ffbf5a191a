//! Liveness and reaping: the batched `seen` refresh and registry tick of each reaper tick,
//! retrying failed leaves, and sweeping the rooms for the connections of dead nodes.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use activenow_engine::store::Transition;
use activenow_engine::{ConnId, Room, StoreError};
use fred::interfaces::{KeysInterface, SetsInterface};
use fred::types::{Expiration, SetOptions, Value};

use super::{lock, room_from_index, RedisPresence};
use crate::error::{protocol, store_error};
use crate::record::{self, int, text};
use crate::scripts::{eval, eval_all, Call};

/// Connections per touch call.
const TOUCH_PER_CALL: usize = 1000;
/// Stale connections one reap call removes from one room; more wait for the next tick.
const REAP_PER_ROOM: usize = 1000;
/// Rooms per sweep pipeline.
const ROOMS_PER_PIPELINE: usize = 256;

impl RedisPresence {
    /// One pipeline: this node's registry tick, then the `seen` refresh of its live
    /// connections, room by room.
    pub(super) async fn touch(&self, live: &[ConnId]) -> Result<(), StoreError> {
        let mut by_room: HashMap<Room, Vec<String>> = HashMap::new();
        for conn in live {
            if let Some(rooms) = self.local(conn).get(conn) {
                for room in rooms {
                    by_room
                        .entry(room.clone())
                        .or_default()
                        .push(conn.as_str().to_owned());
                }
            }
        }
        let mut calls = Vec::new();
        for (room, conns) in &by_room {
            for chunk in conns.chunks(TOUCH_PER_CALL) {
                calls.push(Call {
                    script: &self.scripts.touch,
                    keys: vec![self.keys.room(room).seen],
                    args: chunk.to_vec(),
                });
            }
        }
        // The registry tick last, so a connection's `seen` is never newer than its node's
        // last tick (on one server; see `reap` for clusters).
        calls.push(Call {
            script: &self.scripts.nodes,
            keys: vec![self.keys.nodes(), self.keys.node(&self.incarnation)],
            args: vec![
                "tick".into(),
                self.incarnation.clone(),
                self.node_id.clone(),
                self.lookback_ms.to_string(),
            ],
        });
        let mut results = eval_all(&self.client, &self.scripts, calls).await;
        let tick = results
            .pop()
            .ok_or_else(|| protocol("tick"))?
            .map_err(store_error)?
            .into_array();
        if tick.len() != 2 {
            return Err(protocol("tick"));
        }
        let (prev, now) = (int(&tick[0])?, int(&tick[1])?);
        let lapsed = prev < 0 || now.saturating_sub(prev) > self.lookback_ms as i64;
        if self.ticked.swap(true, Ordering::Relaxed) && lapsed {
            tracing::warn!(
                "this node's registry entry was gone or stale (Redis restarted, or the node \
                 looked dead): re-asserting its memberships"
            );
            self.lost.store(true, Ordering::Relaxed);
        }
        for r in results {
            r.map_err(store_error)?;
        }
        Ok(())
    }

    pub(super) async fn reap_dead(
        &self,
        stale_ms: u64,
        ts_ms: u64,
    ) -> Result<Vec<(Room, Transition)>, StoreError> {
        let mut out = Vec::new();
        let pending = std::mem::take(&mut *lock(&self.pending));
        if !pending.is_empty() {
            let (done, failed) = self.leave_now(&pending, ts_ms).await;
            out.extend(done);
            self.requeue(failed);
        }
        let dead = match self.nodes(vec!["dead".into(), stale_ms.to_string()]).await {
            Ok(v) => v,
            Err(e) if out.is_empty() => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "listing dead nodes failed");
                return Ok(out);
            }
        };
        let dead: Vec<String> = dead
            .into_array()
            .iter()
            .filter_map(|v| text(v).ok())
            .filter(|n| n != &self.incarnation)
            .collect();
        if dead.is_empty() {
            return Ok(out);
        }
        // Any node may sweep (each removal is announced once whoever does it), but one per
        // interval is enough: the others skip this tick.
        let claimed: Result<Option<String>, _> = self
            .client
            .set(
                self.keys.sweep(),
                self.incarnation.as_str(),
                Some(Expiration::PX(self.sweep_every_ms as i64)),
                Some(SetOptions::NX),
                false,
            )
            .await;
        match claimed {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(out),
            Err(e) => {
                tracing::warn!(error = %e, "claiming the dead-node sweep failed");
                return Ok(out);
            }
        }
        tracing::debug!(nodes = ?dead, "reaping connections of dead nodes");
        // A dead node's last `seen` refreshes may be a little newer than its last tick (and
        // on a cluster come from another shard's clock), so one sweep right after it counts
        // as dead may miss some: sweep on every tick until the node has been dead for twice
        // the lookback, and forget it only then.
        let before = out.len();
        let complete = self.sweep(stale_ms, ts_ms, &mut out).await;
        if out.len() > before {
            tracing::info!(nodes = ?dead, removed = out.len() - before, "reaped dead nodes' connections");
        }
        if complete {
            let mut args = vec!["forget".to_owned(), stale_ms.saturating_mul(2).to_string()];
            args.extend(dead);
            if let Err(e) = self.nodes(args).await {
                tracing::warn!(error = %e, "forgetting dead nodes failed");
            }
        }
        Ok(out)
    }

    /// Removes connections not seen for `stale_ms` from every indexed room. True when the
    /// sweep covered everything (no error, no room with more stale connections left).
    async fn sweep(&self, stale_ms: u64, ts_ms: u64, out: &mut Vec<(Room, Transition)>) -> bool {
        let names: Vec<String> = match self.client.smembers(self.keys.rooms()).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "reading the room index failed");
                return false;
            }
        };
        let rooms: Vec<Room> = names.into_iter().filter_map(room_from_index).collect();
        let mut complete = true;
        let mut emptied = Vec::new();
        for chunk in rooms.chunks(ROOMS_PER_PIPELINE) {
            let calls = chunk
                .iter()
                .map(|room| Call {
                    script: &self.scripts.reap,
                    keys: self.keys.room(room).all(),
                    args: vec![stale_ms.to_string(), REAP_PER_ROOM.to_string()],
                })
                .collect();
            let results = eval_all(&self.client, &self.scripts, calls).await;
            for (result, room) in results.into_iter().zip(chunk) {
                let parsed = result.map_err(store_error).and_then(|v| {
                    let mut f = v.into_array();
                    if f.len() != 3 {
                        return Err(protocol("reap"));
                    }
                    let found = int(&f[2])? as usize;
                    let empty = int(&f[0])? == 1;
                    Ok((
                        empty,
                        record::transitions(f.swap_remove(1), Some(ts_ms))?,
                        found,
                    ))
                });
                match parsed {
                    Ok((empty, ts, found)) => {
                        complete &= found < REAP_PER_ROOM;
                        if empty {
                            emptied.push(room.clone());
                        }
                        out.extend(ts.into_iter().map(|t| (room.clone(), t)));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, room = %room, "reaping a room failed");
                        complete = false;
                    }
                }
            }
        }
        self.unindex(emptied).await;
        complete
    }

    async fn nodes(&self, args: Vec<String>) -> Result<Value, StoreError> {
        eval(
            &self.client,
            Call {
                script: &self.scripts.nodes,
                keys: vec![self.keys.nodes(), self.keys.node(&self.incarnation)],
                args,
            },
        )
        .await
        .map_err(store_error)
    }
}
