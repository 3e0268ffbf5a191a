//! The leave grace (`EngineConfig::leave_grace`): a dropped connection's memberships stay in
//! the store for the grace ("lingering") and are left when it ends, so a page reload does not
//! flap its identity out and in.
//!
//! No identity logic of its own: the store already says whether a transition changes the
//! identity. A new connection of the same identity that joins during the grace, on any node,
//! finds the identity present (`identity_changed = false`), and the lingering connection's
//! later leave finds another connection there (`identity_changed = false` too): protocols that
//! show identities see neither a leave nor a join and counts never dip. Protocols that show
//! connections (Socket.IO's `connId`) see the new connection join and the old one leave when
//! the grace ends.
//!
//! A lingering connection stays in the registry (it has no socket: the connection gauge no
//! longer counts it, and its room subscriptions switch to a renderer that shows nothing but
//! keep the broker listening). So the reaper keeps refreshing it (other nodes do not reap it;
//! if this node dies, it is reaped as usual), reassert puts it back, a kick that names it
//! leaves it at once (`kick.rs`), and shutdown leaves it with the rest.
//!
//! One task holds the deadlines in a queue: the grace is one constant and time only grows, so
//! deadlines arrive in order and the queue's front is always the next one.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::grace_state::GraceMsg;
use super::handle::Engine;
use super::registry::{ConnShared, Membership};
use crate::model::{ConnId, Room};
use crate::outbox::CloseCause;

impl Engine {
    /// Lingering connections on this node now.
    pub fn lingering_connections(&self) -> usize {
        self.shared.grace.pending.load(Ordering::Relaxed)
    }

    /// Makes a dropped connection linger, if the grace applies to drops and a slot is free;
    /// false: the caller leaves it at once.
    pub(super) async fn linger(&self, conn: &Arc<ConnShared>) -> bool {
        let config = &self.shared.config;
        if config.leave_grace.is_zero()
            || !config.leave_grace_on.close
            || !conn.socket
            || conn.kicked.load(Ordering::SeqCst)
            // Closed by the server (session finished, Pusher terminate_connections): not a
            // reload.
            || conn.outbox.close_cause() == Some(CloseCause::Finished)
            || self.shared.cancel.is_cancelled()
        {
            return false;
        }
        let ms = conn.memberships.lock().await;
        if !ms.iter().any(|m| m.active) {
            return false;
        }
        let grace = &self.shared.grace;
        let max = config.leave_grace_max_pending;
        let taken = grace
            .pending
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        if !taken {
            self.shared.metrics.leave_grace_overflows.inc();
            return false;
        }
        // See `kick::close_local`: set ours, then read theirs.
        conn.lingering.store(true, Ordering::SeqCst);
        if conn.kicked.load(Ordering::SeqCst) {
            conn.lingering.store(false, Ordering::SeqCst);
            grace.pending.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        for m in ms.iter() {
            // The connection is already subscribed there, so this moves it to the silent
            // renderer without a broker call.
            let _ = self.subscribe_local(&m.room, conn, &grace.silent).await;
        }
        drop(ms);
        self.shared.metrics.gauge(conn.socket).dec();
        self.shared.metrics.lingering.inc();
        let deadline = Instant::now() + config.leave_grace;
        let _ = grace
            .sender
            .0
            .send(GraceMsg::Linger(deadline, conn.id.clone()));
        true
    }

    /// Ends a lingering connection's grace in `room` (a kick) or everywhere (its deadline):
    /// an ordinary leave. Nothing when it no longer lingers (shut down, or already left).
    async fn end_linger(&self, id: &ConnId, room: Option<&Room>) {
        let Some(conn) = self.shared.registry.shard(id).get(id).cloned() else {
            return;
        };
        let mut ms = conn.memberships.lock().await;
        if !conn.lingering.load(Ordering::SeqCst) {
            return;
        }
        let left: Vec<Membership> = match room {
            None => std::mem::take(&mut *ms),
            Some(room) => {
                let (left, kept) = std::mem::take(&mut *ms)
                    .into_iter()
                    .partition(|m| &m.room == room);
                *ms = kept;
                left
            }
        };
        let done = ms.is_empty();
        if done {
            conn.lingering.store(false, Ordering::SeqCst);
        }
        drop(ms);
        let active: Vec<(Room, ConnId)> = left
            .iter()
            .filter(|m| m.active)
            .map(|m| (m.room.clone(), conn.id.clone()))
            .collect();
        // A kick set `kicked` before asking for this; a deadline reports why the socket went.
        self.leave_batch(&active, self.departure(&conn)).await;
        for m in &left {
            self.unsubscribe_local(&m.room, &conn.id).await;
        }
        if done {
            let mut shard = self.shared.registry.shard(&conn.id);
            if shard.get(&conn.id).is_some_and(|c| Arc::ptr_eq(c, &conn)) {
                shard.remove(&conn.id);
            }
            drop(shard);
            self.shared.grace.pending.fetch_sub(1, Ordering::Relaxed);
            self.shared.metrics.lingering.dec();
        }
    }

    /// The grace task: ends each lingering connection at its deadline, and kicked ones at
    /// once. Stops with the engine (shutdown leaves what still lingers).
    pub(super) async fn run_grace(&self, mut inbox: mpsc::UnboundedReceiver<GraceMsg>) {
        let mut queue: VecDeque<(Instant, ConnId)> = VecDeque::new();
        loop {
            let next = queue.front().map(|(deadline, _)| *deadline);
            let far = Instant::now() + std::time::Duration::from_secs(3600);
            tokio::select! {
                _ = self.shared.cancel.cancelled() => return,
                msg = inbox.recv() => match msg {
                    None => return,
                    Some(GraceMsg::Linger(deadline, conn)) => queue.push_back((deadline, conn)),
                    Some(GraceMsg::Kicked(id, room)) => self.end_linger(&id, Some(&room)).await,
                },
                _ = tokio::time::sleep_until(next.unwrap_or(far)), if next.is_some() => {
                    if let Some((_, id)) = queue.pop_front() {
                        self.end_linger(&id, None).await;
                    }
                }
            }
        }
    }
}
