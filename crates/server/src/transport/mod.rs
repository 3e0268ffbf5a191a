//! What every WebSocket endpoint shares: the upgrade checks (Origin, connection limit),
//! buffer sizes, the socket loop that writes the outbox and reads client messages, and the
//! per-connection rate limit. Protocols supply only a [`ws::Inbound`] handler. Also the HTTP
//! server itself ([`serve`]: timeouts, body limit), the client address behind trusted proxies
//! ([`client_ip`]) and the per-IP limits ([`per_ip`]).

pub mod admission;
pub mod body;
pub mod client_ip;
pub mod encoding;
pub mod http_limits;
pub mod origin;
pub mod per_ip;
pub mod rate;
pub mod serve;
pub mod websocket;
pub mod ws;
