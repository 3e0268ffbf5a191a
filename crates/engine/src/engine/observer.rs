//! [`TransitionObserver`]: in-process observers of the transitions this node produces
//! (webhooks, the online-status service), registered with
//! [`Engine::observe`](super::Engine::observe) for one room or
//! [`Engine::observe_all`](super::Engine::observe_all) for every room, and the [`Cause`]
//! each transition is reported with.

use crate::model::{PresenceEvent, Room};

/// Why a transition happened, as the node that produced it knows it. Not a wire format:
/// adapters name these in their own words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    /// A join (a first join, a rejoin after expiry, a membership re-added after a store loss).
    Join,
    /// A state update (through the connection or the HTTP identity update).
    Update,
    /// An explicit leave, a re-key, or the connection closing.
    Leave,
    /// The reaper expired a silent connection (no heartbeat within its TTL).
    Ttl,
    /// The connection was closed by [`Engine::kick`](super::Engine::kick).
    Kicked,
    /// Reaped from a node that died without cleaning up (`PresenceStore::reap`).
    NodeLost,
    /// This node's graceful shutdown removed it.
    Shutdown,
}

/// Sees the transitions that *this node's* store calls produced: each transition reaches
/// exactly one node's observers (the store computes it once), so an observer can act on it
/// once cluster-wide (send a webhook). Called synchronously while the transition is
/// published: it must not block (push to a bounded queue).
pub trait TransitionObserver: Send + Sync + 'static {
    fn produced(&self, room: &Room, transition: &PresenceEvent, cause: Cause);
}
