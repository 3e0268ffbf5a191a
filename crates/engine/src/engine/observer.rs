//! [`TransitionObserver`]: in-process observers of the transitions this node produces
//! (webhooks, the online-status service), registered with
//! [`Engine::observe`](super::Engine::observe).

use crate::model::{PresenceEvent, Room};

/// Sees the transitions of one room that *this node's* store calls produced: each transition
/// reaches exactly one node's observers (the store computes it once), so an observer can act on
/// it once cluster-wide (send a webhook). Called synchronously while the transition is
/// published: it must not block (push to a bounded queue).
pub trait TransitionObserver: Send + Sync + 'static {
    fn produced(&self, room: &Room, transition: &PresenceEvent);
}
