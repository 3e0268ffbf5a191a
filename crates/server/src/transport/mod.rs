//! What every WebSocket endpoint shares: the upgrade checks (Origin, connection limit),
//! buffer sizes, the socket loop that writes the outbox and reads client messages, and the
//! per-connection rate limit. Protocols supply only a [`ws::Inbound`] handler.

pub mod admission;
pub mod encoding;
pub mod origin;
pub mod rate;
pub mod ws;
