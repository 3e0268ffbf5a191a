//! Reconciling after a Redis outage: what the sockets missed is announced once, and an
//! empty Redis never shows them a count dip or a second join.
//!
//! While Redis is unreachable nothing reaches it: leaves fail and wait in `pending`, and no
//! event is published anywhere. When it answers again:
//! - the *data epoch* (a random id written once into an empty Redis, see `lua/nodes.lua`)
//!   tells whether it kept its data. When it lost it, re-assertion is *silent*: every node
//!   puts its memberships back without announcing them (their watchers never saw them go),
//!   and the leaves that happened meanwhile become *orphans*, announced by `lua/forget.lua`
//!   although Redis no longer holds them.
//! - a node holds back every leave, orphan and dead-node sweep until each node that was
//!   alive at its last tick before the outage, and each node the registry shows alive since,
//!   has marked itself *ready* (re-asserted, and listening on pub/sub again), or until the
//!   lookback has passed (a node that does not come back by then is dead, and dead-node
//!   reaping takes over). After a data loss it also waits the *settle time* (see
//!   `settle_after_data_loss`): a node that registered less than one tick before the outage
//!   is in no node's noted list and the emptied registry forgets it, so only its coming
//!   back (within one capped reconnection wait) makes it known. The held-back leaves are
//!   then computed against rooms that every node has re-asserted (so no count dips, and an
//!   identity still connected elsewhere does not "leave"), and every node's sockets hear
//!   them.
//!
//! Joins are not held back: a join during the few ticks of reconciliation is announced at
//! once, with the count Redis has at that moment.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::Instant;

use activenow_engine::store::Transition;
use activenow_engine::{Identity, Member, Room, State, StoreError};

use super::outage::{Departed, Outage, Reconcile, TickView};
use super::state::{lock, parse_removals, RedisPresence, CONNS_PER_CALL};
use crate::error::store_error;
use crate::record::{self, text};
use crate::scripts::{eval_all, Call};

/// How long a room remembers the identities whose leave an outage's reconciliation
/// announced, so a later node's orphan of the same identity does not announce it again.
const TOMBSTONE_TTL_MS: u64 = 3_600_000;

impl RedisPresence {
    /// True while an outage is being reconciled: leaves and sweeps wait.
    pub(super) fn reconciling(&self) -> bool {
        lock(&self.recon).outage.is_some()
    }

    /// True while re-assertion into a Redis that lost its data goes on: restores announce
    /// nothing.
    pub(super) fn silent(&self) -> bool {
        lock(&self.recon)
            .outage
            .as_ref()
            .is_some_and(|o| o.data_lost)
    }

    /// The tick's arguments: the known epoch (`""` for none) and the `since` of ready marks.
    pub(super) fn tick_view_args(&self) -> (String, String) {
        let r = lock(&self.recon);
        let since = match &r.outage {
            Some(o) => o.since_ms.to_string(),
            None => "+inf".to_owned(),
        };
        (r.epoch.clone().unwrap_or_default(), since)
    }

    /// A tick did not reach Redis: an outage begins (if it has not already).
    pub(super) fn outage_began(&self) {
        let mut r = lock(&self.recon);
        if r.outage.is_none() {
            // Another node's last tick before the outage may follow ours by up to one
            // interval; its ready marks count from after that.
            let since_ms = r.last_tick_ms.saturating_add(self.sweep_every_ms);
            let peers = r.peers.clone();
            tracing::warn!(
                nodes = ?peers,
                "Redis unreachable: holding leaves back until it answers and every node re-asserted"
            );
            r.outage = Some(Outage {
                since_ms,
                peers,
                data_lost: false,
                back_at: None,
            });
        }
    }

    fn data_lost(&self, r: &mut Reconcile) {
        if r.outage.is_none() {
            r.outage = Some(Outage {
                since_ms: r.last_tick_ms.saturating_add(self.sweep_every_ms),
                peers: r.peers.clone(),
                data_lost: false,
                back_at: None,
            });
        }
        if let Some(o) = &mut r.outage {
            if !o.data_lost {
                tracing::warn!(
                    "Redis lost its data: re-asserting this node's memberships silently, then \
                     announcing the leaves it missed"
                );
            }
            o.data_lost = true;
        }
        self.lost.store(true, Ordering::Relaxed);
    }

    /// Before a restore: adopts the data epoch, and notices when Redis lost its data.
    pub(super) async fn check_epoch(&self) -> Result<(), StoreError> {
        let fresh = format!("{:016x}", rand::random::<u64>());
        let epoch = self.nodes(vec!["epoch".into(), fresh]).await?;
        let epoch = text(&epoch)?;
        let mut r = lock(&self.recon);
        match &r.epoch {
            Some(known) if *known != epoch => {
                r.epoch = Some(epoch);
                self.data_lost(&mut r);
            }
            Some(_) => {}
            None => r.epoch = Some(epoch),
        }
        Ok(())
    }

    /// After a tick that reached Redis: notices a lost data epoch, remembers the live nodes,
    /// and ends the outage once every node it waits for is ready (or the lookback passed).
    pub(super) fn ticked(&self, view: TickView) {
        let mut r = lock(&self.recon);
        match &r.epoch {
            Some(known) if *known != view.epoch => {
                r.epoch = Some(view.epoch);
                self.data_lost(&mut r);
            }
            Some(_) => {}
            None => r.epoch = Some(view.epoch),
        }
        r.last_tick_ms = view.now_ms;
        r.peers = view
            .live
            .into_iter()
            .filter(|n| *n != self.incarnation)
            .collect();
        let self_ready = self.listening.is_listening() && !self.lost.load(Ordering::Relaxed);
        let Reconcile { outage, peers, .. } = &mut *r;
        let Some(o) = outage else {
            return;
        };
        let back_at = *o.back_at.get_or_insert_with(Instant::now);
        let ready: HashSet<&String> = view.ready.iter().collect();
        // The nodes noted before the outage, and every node the registry shows alive now: a
        // node that registered after this node's last tick before the outage is in no noted
        // list, and must be waited for as well once it shows up.
        let mut waiting: Vec<&String> = o.peers.iter().filter(|p| !ready.contains(p)).collect();
        for p in peers.iter() {
            if !ready.contains(p) && !waiting.contains(&p) {
                waiting.push(p);
            }
        }
        let elapsed = back_at.elapsed();
        let gave_up = elapsed >= self.lookback;
        // After a data loss the registry no longer knows such a node until it reconnects
        // and ticks: give every node that time to show up (see `settle_after_data_loss`).
        let settled = !o.data_lost || elapsed >= self.settle;
        if !self_ready || !((waiting.is_empty() && settled) || gave_up) {
            return;
        }
        if !waiting.is_empty() {
            tracing::warn!(nodes = ?waiting, "nodes not back after the outage: announcing without them");
        }
        let data_lost = o.data_lost;
        r.outage = None;
        drop(r);
        if data_lost {
            let held = std::mem::take(&mut *lock(&self.pending));
            lock(&self.orphans).extend(held);
        }
        tracing::info!(
            data_lost,
            ready = ?view.ready,
            gave_up,
            "outage reconciled: announcing the leaves held back"
        );
    }

    /// Announces the orphans (see the module doc); those that fail wait for the next tick.
    pub(super) async fn announce_orphans(&self, ts_ms: u64) -> Vec<(Room, Transition)> {
        let orphans = std::mem::take(&mut *lock(&self.orphans));
        if orphans.is_empty() {
            return Vec::new();
        }
        let (known, unknown): (Vec<Departed>, Vec<Departed>) =
            orphans.into_iter().partition(|d| d.who.is_some());
        // Without an identity there is nothing to announce: an ordinary (idempotent) leave.
        lock(&self.pending).extend(unknown);
        let mut by_room: HashMap<Room, Vec<Departed>> = HashMap::new();
        for d in known {
            by_room.entry(d.room.clone()).or_default().push(d);
        }
        let mut call_rooms: Vec<(Room, Vec<Departed>)> = Vec::new();
        for (room, mut departed) in by_room {
            while !departed.is_empty() {
                let rest = departed.split_off(departed.len().min(CONNS_PER_CALL));
                call_rooms.push((room.clone(), std::mem::replace(&mut departed, rest)));
            }
        }
        let calls = call_rooms
            .iter()
            .map(|(room, chunk)| {
                let keys = self.keys.room(room);
                let mut args = vec![TOMBSTONE_TTL_MS.to_string()];
                for d in chunk {
                    let (identity, epoch) = d.who.clone().unwrap_or((Identity::new(""), 0));
                    args.push(d.conn.as_str().to_owned());
                    args.push(identity.as_str().to_owned());
                    args.push(record::encode(&Member {
                        conn: d.conn.clone(),
                        identity,
                        state: State::new(),
                        joined_at_ms: ts_ms,
                        updated_at_ms: ts_ms,
                        epoch,
                    }));
                }
                Call {
                    script: &self.scripts.forget,
                    keys: keys.all(),
                    args,
                }
            })
            .collect();
        let results = eval_all(&self.client, &self.scripts, calls).await;
        let mut out = Vec::new();
        let mut emptied = Vec::new();
        for (result, (room, chunk)) in results.into_iter().zip(call_rooms) {
            match result
                .map_err(store_error)
                .and_then(|v| parse_removals(v, ts_ms))
            {
                Ok((empty, ts)) => {
                    if empty {
                        emptied.push(room.clone());
                    }
                    out.extend(ts.into_iter().map(|t| (room.clone(), t)));
                }
                Err(e) => {
                    tracing::warn!(error = %e, room = %room, "announcing missed leaves failed; will retry");
                    lock(&self.orphans).extend(chunk);
                }
            }
        }
        self.unindex(emptied).await;
        out
    }
}
