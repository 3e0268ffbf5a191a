//! The leave grace's shared state (the engine's part of it is `grace.rs`): the grace task's
//! inbox and the silent renderer of lingering subscriptions.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::hub::Renderer;
use crate::model::{ConnId, Room, RoomEvent};

pub(super) enum GraceMsg {
    /// A dropped connection lingers until the deadline.
    Linger(Instant, ConnId),
    /// A kick named this lingering connection in this room: it leaves the room now.
    Kicked(ConnId, Room),
}

/// The grace task's inbox. Unbounded: a `Linger` per dropped connection, bounded by
/// `leave_grace_max_pending`, and a `Kicked` per kicked lingering membership.
#[derive(Clone)]
pub(super) struct GraceSender(pub(super) mpsc::UnboundedSender<GraceMsg>);

impl GraceSender {
    pub(super) fn kicked(&self, conn: ConnId, room: Room) {
        let _ = self.0.send(GraceMsg::Kicked(conn, room));
    }
}

/// The grace's shared state.
pub(super) struct Grace {
    pub(super) sender: GraceSender,
    /// Lingering connections now (at most `leave_grace_max_pending`).
    pub(super) pending: AtomicUsize,
    /// The renderer of lingering subscriptions: shows nothing.
    pub(super) silent: Arc<dyn Renderer>,
}

struct Silent;

impl Renderer for Silent {
    fn render(&self, _room: &Room, _event: &RoomEvent) -> Option<Bytes> {
        None
    }
}

impl Grace {
    pub(super) fn new(sender: GraceSender) -> Grace {
        Grace {
            sender,
            pending: AtomicUsize::new(0),
            silent: Arc::new(Silent),
        }
    }
}
