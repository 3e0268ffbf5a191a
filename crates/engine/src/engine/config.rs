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
        }
    }
}
