//! ActiveNow's own WebSocket (RFC 6455, server side) for every endpoint but Socket.IO:
//! `frame` decodes and encodes, `socket` reads and writes the accepted TCP stream with
//! buffers that exist only while they hold bytes, `upgrade` answers the HTTP handshake.
//!
//! Why not the library socket: tokio-tungstenite keeps a read buffer per socket for the
//! socket's whole life and zero-fills it before every read, so all of it is resident; at
//! 100,000 idle sockets a 4 KiB buffer is 400 MiB that holds nothing (docs/performance.md).

mod frame;
mod socket;
mod upgrade;

pub use frame::{CloseFrame, Limits, Message, Text, Violation};
pub use socket::{Config, Error, WebSocket};
pub use upgrade::{WebSocketUpgrade, WebSocketUpgradeRejection};

/// The frame decoder, for the fuzz target.
#[doc(hidden)]
pub mod fuzzing {
    pub use super::frame::{decode, Fragments};
}
