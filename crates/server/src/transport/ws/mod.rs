//! The socket loop shared by every WebSocket protocol.
//!
//! One task per socket both reads and writes, so a connection costs one task and its outbox;
//! the socket ([`websocket`](super::websocket)) holds buffers only while they hold bytes
//! (`WS_READ_BUFFER_BYTES` is the most read at once, into a buffer each worker thread
//! shares; `WS_WRITE_BUFFER_BYTES` the output queued before it is written). The loop ends on the client's close, a read
//! error, a close the engine asks for (slow consumer, finished), server shutdown (1012) or,
//! where the protocol asks for it, the client's silence (1001).
//!
//! No write may keep a task alive: every write in the loop is bounded by
//! `SLOW_CONSUMER_TIMEOUT_MS` and a close frame by [`CLOSE_WRITE_TIMEOUT`]; a socket whose
//! write makes no progress is dropped at the TCP level (its task ends, the engine connection
//! is disconnected, presence and slot are freed). Protocol violations close with 1002 (bad
//! framing) or 1007 (invalid UTF-8); pings and pongs count toward the message rate limit.
//!
//! - `inbound`: what a protocol supplies ([`Inbound`]) and answers ([`Reply`]).
//! - `write`: every write the loop makes, each bounded in time.
//! - `drive`: the loop itself and its keep-alive.

mod drive;
mod inbound;
mod write;

use crate::host::Host;
use crate::transport::websocket::{Config, Limits, WebSocketUpgrade};

pub use drive::{drive, drive_closing_idle, drive_with, KeepAlive};
pub use inbound::{Inbound, Reply};
pub use write::{send_close, send_frame, CLOSE_WRITE_TIMEOUT};

/// Applies the buffer and size limits to an upgrade.
pub fn configure(ws: WebSocketUpgrade, host: &Host) -> WebSocketUpgrade {
    let s = &host.settings;
    ws.config(Config {
        read_chunk: s.ws_read_buffer_bytes,
        write_buffer: s.ws_write_buffer_bytes,
        // A batch of the loop (MAX_BATCH frames) must fit; beyond, the client is not reading.
        max_write_buffer: s.ws_write_buffer_bytes.max(s.max_frame_bytes) * 4,
        limits: Limits {
            max_frame: s.max_frame_bytes,
            max_message: s.max_frame_bytes,
        },
    })
}
