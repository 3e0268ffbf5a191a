//! [`RedisOptions`]: how to reach Redis and who this node is.

use std::time::Duration;

/// The longest wait between two reconnection attempts (ms), jitter excluded.
pub(crate) const RECONNECT_MAX_DELAY_MS: u32 = 2_000;
/// The most jitter added to each reconnection wait (ms; fred's default, set explicitly).
pub(crate) const RECONNECT_JITTER_MS: u32 = 100;

/// Pub/sub messages a node may have waiting before it counts as lagging (and loses some):
/// the default of [`RedisOptions::pubsub_buffer`]. fred allocates every slot of each of a
/// client's notification channels up front (about 5 MiB per channel at 65,536), so only the
/// subscriber gets a deep buffer.
pub const PUBSUB_BUFFER: usize = 16_384;

/// How to reach Redis and who this node is.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// `redis://[user:password@]host:port[/db]` (`rediss://` is not built in).
    pub url: String,
    /// This node's id (the engine's `node_id`).
    pub node_id: String,
    /// How long a silent node's connections may linger before another node reaps them
    /// (`PRESENCE_REAPER_LOOKBACK_MS`).
    pub lookback: Duration,
    /// The engine's reaper interval: at most one node per interval sweeps the rooms for a
    /// dead node's connections (`PRESENCE_REAPER_INTERVAL_MS`).
    pub reaper_interval: Duration,
    /// Longest wait for the first connection.
    pub connect_timeout: Duration,
    /// Longest wait for any command; while Redis is unreachable, calls fail after this.
    pub command_timeout: Duration,
    /// Prefix of every key and channel.
    pub prefix: String,
    /// Pub/sub messages this node may have received and not yet handled; beyond it the
    /// oldest are dropped, counted (`activenow_broker_messages_lost_total`) and the node
    /// re-asserts as after lost state.
    pub pubsub_buffer: usize,
}

impl RedisOptions {
    pub fn new(url: &str, node_id: &str, lookback: Duration) -> RedisOptions {
        RedisOptions {
            url: url.to_owned(),
            node_id: node_id.to_owned(),
            lookback,
            reaper_interval: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(2),
            prefix: "an:".into(),
            pubsub_buffer: PUBSUB_BUFFER,
        }
    }
}
