//! Liveness and reaping: the batched `seen` refresh and registry tick of each reaper tick,
//! retrying failed leaves, and sweeping the rooms for the connections of dead nodes.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;

use activenow_engine::store::Transition;
use activenow_engine::{ConnId, Member, Room, StoreError};
use fred::interfaces::{HashesInterface, KeysInterface, SetsInterface, SortedSetsInterface};
use fred::types::{Expiration, SetOptions, Value};

use super::outage::{matching, TickView};
use super::state::{lock, room_from_index, RedisPresence};
use crate::error::{protocol, store_error};
use crate::record::{self, int, text};
use crate::scripts::{eval, eval_all, Call};

/// Connections per touch call.
const TOUCH_PER_CALL: usize = 1000;
/// Stale connections one reap call removes from one room; more wait for the next tick.
const REAP_PER_ROOM: usize = 1000;
/// Rooms per sweep pipeline.
const ROOMS_PER_PIPELINE: usize = 256;

/// The tick (of `turns`) on which a connection's `seen` is refreshed; fixed for its life.
fn turn_of(conn: &ConnId, turns: u64) -> u64 {
    let mut h = DefaultHasher::new();
    conn.as_str().hash(&mut h);
    h.finish() % turns
}

impl RedisPresence {
    /// One pipeline: the `seen` refresh of the connections heard from since the last tick
    /// and of this turn's share of the others, room by room, then this node's registry tick.
    pub(super) async fn touch(&self, live: &[ConnId], heard: &[ConnId]) -> Result<(), StoreError> {
        let turn = self.touches.fetch_add(1, Ordering::Relaxed) % self.touch_turns;
        let heard: HashSet<&ConnId> = heard.iter().collect();
        let mut by_room: HashMap<Room, Vec<String>> = HashMap::new();
        for conn in live
            .iter()
            .filter(|c| heard.contains(c) || turn_of(c, self.touch_turns) == turn)
        {
            if let Some(held) = self.local(conn).get(conn) {
                for h in held {
                    by_room
                        .entry(h.room.clone())
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
        // Ready (see `reconcile.rs`): this node's memberships are re-asserted and it listens.
        let ready = self.listening.is_listening() && !self.lost.load(Ordering::Relaxed);
        let (known_epoch, since) = self.tick_view_args();
        calls.push(Call {
            script: &self.scripts.nodes,
            keys: self.node_keys(),
            args: vec![
                "tick".into(),
                self.incarnation.clone(),
                self.node_id.clone(),
                self.lookback_ms.to_string(),
                known_epoch,
                format!("{:016x}", rand::random::<u64>()),
                if ready { "1" } else { "0" }.into(),
                since,
            ],
        });
        let mut results = eval_all(&self.client, &self.scripts, calls).await;
        let tick = match results.pop().ok_or_else(|| protocol("tick"))? {
            Ok(v) => v.into_array(),
            Err(e) => {
                self.outage_began();
                return Err(store_error(e));
            }
        };
        if tick.len() != 5 {
            return Err(protocol("tick"));
        }
        let (prev, now) = (int(&tick[0])?, int(&tick[1])?);
        let names = |v: &Value| -> Vec<String> {
            v.clone()
                .into_array()
                .iter()
                .filter_map(|n| text(n).ok())
                .collect()
        };
        let view = TickView {
            now_ms: now.max(0) as u64,
            epoch: text(&tick[2])?,
            live: names(&tick[3]),
            ready: names(&tick[4]),
        };
        let lapsed = prev < 0 || now.saturating_sub(prev) > self.lookback_ms as i64;
        if self.ticked.swap(true, Ordering::Relaxed) && lapsed {
            tracing::warn!(
                "this node's registry entry was gone or stale (Redis restarted, or the node \
                 looked dead): re-asserting its memberships"
            );
            self.lost.store(true, Ordering::Relaxed);
        }
        self.ticked(view);
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
        if self.reconciling() {
            // Leaves and sweeps wait until every node has re-asserted (see `reconcile.rs`).
            return Ok(Vec::new());
        }
        let mut out = self.announce_orphans(ts_ms).await;
        let mut pending = std::mem::take(&mut *lock(&self.pending));
        if !pending.is_empty() {
            let pairs: Vec<(Room, ConnId)> = pending
                .iter()
                .map(|d| (d.room.clone(), d.conn.clone()))
                .collect();
            let (done, failed) = self.leave_now(&pairs, ts_ms).await;
            out.extend(done);
            self.requeue(matching(&mut pending, &failed));
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

    /// The room's members and their `seen` times, read in one pipeline (one slot).
    pub(super) async fn members_with_seen(
        &self,
        room: &Room,
    ) -> Result<Vec<(Member, Option<u64>)>, StoreError> {
        let keys = self.keys.room(room);
        let pipeline = self.client.pipeline();
        let _: () = pipeline.hgetall(&keys.members).await.map_err(store_error)?;
        let _: () = pipeline
            .zrange(&keys.seen, 0, -1, None, false, None, true)
            .await
            .map_err(store_error)?;
        let (all, seen): (HashMap<String, String>, Value) =
            pipeline.all().await.map_err(store_error)?;
        let mut seen_ms: HashMap<String, u64> = HashMap::new();
        let mut flat = seen.into_array().into_iter();
        while let (Some(conn), Some(score)) = (flat.next(), flat.next()) {
            if let (Ok(conn), Some(score)) = (text(&conn), score.as_f64()) {
                seen_ms.insert(conn, score.max(0.0) as u64);
            }
        }
        all.iter()
            .map(|(conn, rec)| Ok((record::decode(conn, rec)?, seen_ms.get(conn).copied())))
            .collect()
    }

    fn node_keys(&self) -> Vec<String> {
        vec![
            self.keys.nodes(),
            self.keys.node(&self.incarnation),
            self.keys.epoch(),
            self.keys.ready(),
        ]
    }

    pub(super) async fn nodes(&self, args: Vec<String>) -> Result<Value, StoreError> {
        eval(
            &self.client,
            Call {
                script: &self.scripts.nodes,
                keys: self.node_keys(),
                args,
            },
        )
        .await
        .map_err(store_error)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::state::touch_turns;
    use super::*;

    #[test]
    fn a_live_connection_is_refreshed_well_inside_the_lookback() {
        // Defaults: 60 s lookback, 1 s ticks -> every 15 s.
        assert_eq!(
            touch_turns(Duration::from_secs(60), Duration::from_secs(1)),
            15
        );
        // A lookback shorter than four ticks: every tick.
        assert_eq!(
            touch_turns(Duration::from_millis(300), Duration::from_millis(100)),
            1
        );
        assert_eq!(
            touch_turns(Duration::from_secs(3600), Duration::from_millis(10)),
            64
        );
        for turns in [1, 3, 15] {
            let conns: Vec<ConnId> = (0..1000).map(|i| ConnId::new(&format!("c{i}"))).collect();
            let mut per_turn = vec![0; turns as usize];
            for c in &conns {
                let t = turn_of(c, turns);
                assert_eq!(t, turn_of(c, turns), "a connection keeps its turn");
                per_turn[t as usize] += 1;
            }
            // Spread roughly evenly, so no tick carries much more than its share.
            assert!(
                per_turn.iter().all(|&n| n > 1000 / turns as usize / 2),
                "{per_turn:?}"
            );
        }
    }
}
