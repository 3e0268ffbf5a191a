//! [`Liveness`]: how a connection stays present (the reaper's rule for each connection).

use std::time::Duration;

/// How a connection stays present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// Present while it heartbeats at least once per `ttl` (room sockets with the presence
    /// TTL, Socket.IO, HTTP online status with its own TTL).
    Heartbeat { ttl: Duration },
    /// Present as long as its socket is open (visitor sockets, channels, session waiters).
    Socket,
}
