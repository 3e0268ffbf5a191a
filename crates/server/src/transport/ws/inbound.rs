//! The one seam between the socket loop and a protocol: the loop owns reading, writing,
//! limits and keep-alive, and a protocol only turns a client's text into a reply.

use std::future::Future;

use bytes::Bytes;

use crate::close::{reason, Close};

/// What a protocol answers to one client message.
pub enum Reply {
    Nothing,
    /// A frame for this socket only (an error, an ack).
    Frame(Bytes),
    /// Close the socket with this code and reason.
    Close(Close),
}

/// A protocol's handling of client messages on one socket.
pub trait Inbound: Send {
    fn on_text(&mut self, text: &str) -> impl Future<Output = Reply> + Send;

    /// Renders a transport-level error (rate limit, binary frame) in the protocol's format.
    fn error_frame(&self, code: &'static str, message: &str) -> Bytes;

    /// Wall-clock ms at which the socket's token expires (close 4001); read again after
    /// every message, since a `refresh` moves it. `None` = never.
    fn expires_at_ms(&self) -> Option<u64> {
        None
    }

    /// The close code and reason when the engine finishes the socket (`Outbox::finish`):
    /// a protocol whose clients read the code (Pusher's 4009) says so here.
    fn finished_close(&self) -> crate::close::Close {
        reason::DONE
    }
}
