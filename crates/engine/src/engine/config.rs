//! [`EngineConfig`]: the engine's settings (the server fills them from its own).

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Prefix of the connection ids this node mints; unique per node.
    pub node_id: String,
    /// How long a heartbeat-kept connection stays present without a heartbeat.
    pub presence_ttl: Duration,
    /// How often the reaper runs (expiry, batched liveness refresh, dead-node reaping).
    pub reaper_interval: Duration,
    /// On a shared store: how long a dead node's memberships may linger before any node
    /// reaps them.
    pub reaper_lookback: Duration,
    /// Frames a connection may have waiting before its slow-consumer clock starts.
    pub send_queue_capacity: usize,
    /// Frames a connection may have waiting at most; beyond, it is a slow consumer at once.
    pub send_queue_max: usize,
    /// How long a queue may stay at or above `send_queue_capacity` before its connection is
    /// closed as a slow consumer.
    pub slow_consumer_timeout: Duration,
    /// How long a departure named in `leave_grace_on` waits before it is a leave (see
    /// `grace.rs`); zero: every leave is immediate.
    pub leave_grace: Duration,
    /// Which departures wait for `leave_grace`.
    pub leave_grace_on: GraceOn,
    /// Dropped connections that may linger on this node at once; a drop beyond it leaves at
    /// once (`Metrics::leave_grace_overflows`).
    pub leave_grace_max_pending: usize,
}

/// Which departures wait for the leave grace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GraceOn {
    /// A connection dropped (socket closed, [`super::Connection::disconnect`]).
    pub close: bool,
    /// A heartbeat-kept connection went silent: its leave comes at TTL + grace.
    pub ttl: bool,
}

impl Default for GraceOn {
    fn default() -> Self {
        GraceOn {
            close: true,
            ttl: false,
        }
    }
}

impl GraceOn {
    /// Parses a comma list among `close` and `ttl` (empty: none). An explicit leave is never
    /// delayed (the client said it left): `leave` is refused, as is any other word, with the
    /// reason.
    pub fn parse(list: &str) -> Result<GraceOn, String> {
        let mut on = GraceOn {
            close: false,
            ttl: false,
        };
        for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "close" => on.close = true,
                "ttl" => on.ttl = true,
                "leave" => {
                    return Err("`leave` is not delayed: an explicit leave is immediate".into())
                }
                other => return Err(format!("unknown `{other}`: a comma list among close, ttl")),
            }
        }
        Ok(on)
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            node_id: "n1".into(),
            presence_ttl: Duration::from_secs(30),
            reaper_interval: Duration::from_secs(1),
            reaper_lookback: Duration::from_secs(60),
            send_queue_capacity: 256,
            send_queue_max: 4096,
            slow_consumer_timeout: Duration::from_secs(5),
            leave_grace: Duration::ZERO,
            leave_grace_on: GraceOn::default(),
            leave_grace_max_pending: 10_000,
        }
    }
}
