//! The reaper: expiry of silent connections, the batched liveness refresh, reaping what dead
//! nodes left behind, and the batched leave of shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::handle::Engine;
use super::observer::Cause;
use super::registry::ConnShared;
use crate::clock;
use crate::model::{ConnId, Room};

impl Engine {
    /// Stops the reaper and removes every presence this node still holds from the backend,
    /// in one batch, broadcasting the leaves.
    pub async fn shutdown(&self) {
        self.begin_shutdown();
        self.shared.cancel.cancel();
        let conns = self.shared.registry.all();
        let mut memberships = Vec::new();
        for conn in &conns {
            let mut ms = conn.memberships.lock().await;
            for m in ms.iter_mut().filter(|m| m.active) {
                m.active = false;
                memberships.push((m.room.clone(), conn.id.clone()));
            }
        }
        self.leave_batch(&memberships, Cause::Shutdown).await;
    }

    /// Marks the start of this node's graceful shutdown: connections that close from now on
    /// (the server closing its sockets) report [`Cause::Shutdown`] to observers, not
    /// [`Cause::Leave`]. [`Engine::shutdown`] calls it too.
    pub fn begin_shutdown(&self) {
        self.shared.shutting_down.store(true, Ordering::Relaxed);
    }

    /// Why a connection's membership ends when it leaves or closes: a kick, this node's
    /// shutdown, or the connection's own leave.
    pub(super) fn departure(&self, conn: &ConnShared) -> Cause {
        if conn.kicked.load(Ordering::Relaxed) {
            Cause::Kicked
        } else if self.shared.shutting_down.load(Ordering::Relaxed) {
            Cause::Shutdown
        } else {
            Cause::Leave
        }
    }

    /// One reaper pass: expire silent connections, refresh live ones in the store, reap what
    /// dead nodes left behind. The reaper task calls it every `reaper_interval`.
    pub async fn reap(&self) {
        if self.shared.backend.presence.take_lost_state() {
            self.reassert().await;
        }
        let now = self.shared.registry.now_ms();
        let mut live = Vec::new();
        let mut heard = Vec::new();
        let mut silent = Vec::new();
        let grace = self.ttl_grace_ms();
        for conn in self.shared.registry.all() {
            if conn.expired.load(Ordering::Relaxed) {
                continue;
            }
            // Lingering in the leave grace: alive for the store until the grace ends.
            if conn.lingering.load(Ordering::Relaxed) {
                live.push(conn.id.clone());
                continue;
            }
            let seen = conn.last_seen_ms.load(Ordering::Relaxed);
            match conn.ttl_ms() {
                Some(ttl) if seen.saturating_add(ttl + grace) <= now => silent.push(conn),
                _ => {
                    if conn.refreshed_ms.swap(seen, Ordering::Relaxed) < seen {
                        heard.push(conn.id.clone());
                    }
                    live.push(conn.id.clone());
                }
            }
        }
        for conn in silent {
            self.expire(&conn, now).await;
        }
        let store = &self.shared.backend.presence;
        if let Err(e) = self.timed(store.touch_conns(&live, &heard)).await {
            tracing::warn!(error = %e, "liveness refresh failed");
        }
        let lookback = self.shared.config.reaper_lookback.as_millis() as u64;
        match self.timed(store.reap(lookback, clock::now_ms())).await {
            Ok(reaped) => {
                for (room, t) in reaped {
                    self.shared.metrics.expirations.inc();
                    self.publish_transitions(&room, std::slice::from_ref(&t), Cause::NodeLost)
                        .await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "reaping dead nodes failed"),
        }
    }

    /// The leave grace added to the TTL of silent connections (`ttl` in `leave_grace_on`).
    fn ttl_grace_ms(&self) -> u64 {
        let config = &self.shared.config;
        if config.leave_grace_on.ttl {
            config.leave_grace.as_millis() as u64
        } else {
            0
        }
    }

    pub(super) async fn run_reaper(&self) {
        let mut tick = tokio::time::interval(self.shared.config.reaper_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.shared.cancel.cancelled() => return,
                _ = tick.tick() => self.reap().await,
            }
        }
    }

    /// Removes a silent connection's presence; the socket stays open and its next heartbeat
    /// rejoins.
    async fn expire(&self, conn: &Arc<ConnShared>, now: u64) {
        let mut ms = conn.memberships.lock().await;
        // A heartbeat may have landed while we waited for the lock.
        let ttl = conn
            .ttl_ms()
            .map_or(u64::MAX, |ttl| ttl.saturating_add(self.ttl_grace_ms()));
        if conn
            .last_seen_ms
            .load(Ordering::Relaxed)
            .saturating_add(ttl)
            > now
        {
            return;
        }
        conn.expired.store(true, Ordering::Relaxed);
        let mut memberships = Vec::new();
        for m in ms.iter_mut().filter(|m| m.active) {
            m.active = false;
            memberships.push((m.room.clone(), conn.id.clone()));
        }
        drop(ms);
        self.shared
            .metrics
            .expirations
            .add(memberships.len() as u64);
        self.leave_batch(&memberships, Cause::Ttl).await;
    }

    pub(super) async fn leave_batch(&self, memberships: &[(Room, ConnId)], cause: Cause) {
        if memberships.is_empty() {
            return;
        }
        let store = &self.shared.backend.presence;
        match self.timed(store.leave(memberships, clock::now_ms())).await {
            Ok(transitions) => {
                self.shared.metrics.leaves.add(transitions.len() as u64);
                for (room, t) in transitions {
                    self.publish_transitions(&room, std::slice::from_ref(&t), cause)
                        .await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "leave failed"),
        }
    }
}
