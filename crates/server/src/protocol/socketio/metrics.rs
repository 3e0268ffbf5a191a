//! Socket.IO's own lines of `/metrics`: broadcast packets socketioxide could not queue and
//! unhandled events dropped without an ack.

use std::sync::atomic::Ordering;

use super::codec::SocketIoRenderer;
use crate::metrics::{write_line, WriteMetrics};

impl WriteMetrics for SocketIoRenderer {
    fn write_metrics(&self, out: &mut String) {
        write_line(
            out,
            "socketio_dropped_total",
            "counter",
            "Socket.IO broadcast packets not queued: the socket was closing or at its overflow bound (SEND_QUEUE_MAX_FRAMES).",
            self.dropped.load(Ordering::Relaxed),
        );
        write_line(
            out,
            "socketio_ignored_total",
            "counter",
            "Socket.IO events the server does not handle that asked for no ack, dropped without costing the rate budget.",
            self.ignored.load(Ordering::Relaxed),
        );
    }
}
