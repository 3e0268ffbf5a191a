//! # ActiveNow Redis backend: many nodes, one truth
//!
//! Implements the engine's backend traits on Redis, so several `activenow` nodes behind a
//! load balancer share rooms, counts, members, events and daily figures. It knows nothing
//! of protocols or HTTP; the engine knows nothing of Redis.
//!
//! # Layout
//! - [`connect`]: builds a [`Backend`] named `redis` from a URL (fails when Redis cannot be
//!   reached, so the server can refuse to start).
//! - [`presence`]: membership, identity counts, room versions, liveness and reaping; every
//!   transition is one Lua script on one room's slot.
//! - [`broker`]: room messages between nodes over (sharded) pub/sub.
//! - [`stats`]: the day's peak (atomic max) and distinct visitors (HyperLogLog).
//! - [`metadata`]: channel metadata records (Lua compare-and-set on the major revision).
//! - [`locks`]: named locks (`PX` expiry on Redis' clock, Lua compare-then-act).
//! - `topology`: sharded subscriptions follow a Redis Cluster's slots when they move.
//! - `keys`: key names and hash tags (Redis Cluster slots); `scripts` and `lua/`: the Lua
//!   scripts and how they are called; `record`: how members are stored; `metadata_record`:
//!   how channel metadata is stored; `options`: [`RedisOptions`].
//!
//! Files import one way (the `layering` test checks it): `lib.rs` only wires, nothing
//! imports through it.
//!
//! # Client
//! [fred](https://docs.rs/fred): it reconnects by itself with exponential back-off, re-
//! subscribes (sharded channels included) after a reconnection, reports reconnections as
//! events, routes sharded pub/sub and scripts to the right cluster node, and pipelines
//! concurrent commands on one connection.

mod broker;
mod error;
mod keys;
mod locks;
mod metadata;
mod metadata_record;
mod online;
mod options;
mod presence;
mod record;
mod scripts;
mod sessions;
mod stats;
mod topology;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use activenow_engine::Backend;
use fred::clients::SubscriberClient;
use fred::interfaces::{ClientLike, EventInterface};
use fred::types::config::{
    ClusterDiscoveryPolicy, Config, ReconnectPolicy, ServerConfig, TcpConfig,
};
use fred::types::{Builder, InfoKind};

pub use broker::RedisBroker;
pub use error::RedisError;
pub use locks::RedisLocks;
pub use metadata::RedisMetadata;
pub use online::RedisOnlineRecords;
pub use options::RedisOptions;
use options::{RECONNECT_JITTER_MS, RECONNECT_MAX_DELAY_MS};
use presence::Listening;
pub use presence::RedisPresence;
pub use sessions::RedisSessions;
pub use stats::RedisVisitorStats;

/// Notification depth of the command client, which receives no pub/sub messages.
const COMMAND_CLIENT_BUFFER: usize = 64;

/// Connects (command, publisher and subscriber clients) and returns the `redis` backend.
/// Fails when Redis cannot be reached within `connect_timeout`.
///
/// Room messages get their own connection: every fred connection is served by one router
/// task, and under seed 1's load (10,000 heartbeats/s, each a script and a publish) one
/// connection carrying both served 4,300 heartbeats/s, 6,200 with the publisher apart
/// (docs/socketio.md). A third connection for the update scripts measured no gain.
pub async fn connect(options: &RedisOptions) -> Result<Backend, RedisError> {
    let mut builder = builder(options)?;
    let connect_error = |e: fred::error::Error| RedisError::Connect(e.to_string());
    if builder
        .get_config()
        .map(|c| c.server.is_clustered())
        .unwrap_or(false)
    {
        let probe = builder.build().map_err(connect_error)?;
        start(&probe, options.connect_timeout).await?;
        let mut seeds = topology::every_node(&probe).await.map_err(connect_error)?;
        let _ = probe.quit().await;
        builder.with_config(|c| {
            let configured = c.server.hosts();
            seeds.retain(|s| !configured.contains(s));
            seeds.splice(0..0, configured);
            c.server = ServerConfig::Clustered {
                hosts: seeds,
                policy: ClusterDiscoveryPolicy::default(),
            };
        });
    }
    let client = builder.build().map_err(connect_error)?;
    let publisher = builder.build().map_err(connect_error)?;
    builder
        .with_performance_config(|p| p.broadcast_channel_capacity = options.pubsub_buffer.max(1));
    let subscriber = builder.build_subscriber_client().map_err(connect_error)?;
    start(&client, options.connect_timeout).await?;
    start(&publisher, options.connect_timeout).await?;
    start(&subscriber, options.connect_timeout).await?;
    let scripts = Arc::new(scripts::Scripts::new());
    scripts.load(&client).await.map_err(connect_error)?;
    let sharded = server_major_version(&client).await.map_err(connect_error)? >= 7;
    let lost = Arc::new(AtomicBool::new(false));
    let listening = Arc::new(AtomicBool::new(true));
    watch_subscriber(&subscriber, sharded, listening.clone(), lost.clone());
    let (closing, closed) = tokio::sync::watch::channel(false);
    topology::follow(
        &[&client, &publisher],
        &subscriber,
        listening.clone(),
        lost.clone(),
        closed,
    );
    let on_reconnect = lost.clone();
    client.on_reconnect(move |server| {
        tracing::warn!(%server, "reconnected to Redis: re-asserting this node's memberships");
        on_reconnect.store(true, Ordering::Relaxed);
        async { Ok(()) }
    });
    let keys = keys::Keys::new(&options.prefix);
    Ok(Backend {
        name: "redis",
        presence: Arc::new(RedisPresence::new(
            client.clone(),
            keys.clone(),
            scripts.clone(),
            options,
            lost.clone(),
            Listening {
                subscriber: subscriber.clone(),
                resubscribed: listening,
            },
            sharded,
        )),
        broker: Arc::new(RedisBroker::new(
            publisher,
            subscriber,
            keys.clone(),
            sharded,
            closing,
            lost,
        )),
        metadata: Arc::new(RedisMetadata::new(
            client.clone(),
            keys.clone(),
            scripts.clone(),
        )),
        locks: Arc::new(RedisLocks::new(
            client.clone(),
            keys.clone(),
            scripts.clone(),
        )),
        online: Arc::new(RedisOnlineRecords::new(
            client.clone(),
            keys.clone(),
            scripts.clone(),
        )),
        stats: Arc::new(RedisVisitorStats::new(
            client.clone(),
            keys.clone(),
            scripts.clone(),
        )),
        sessions: Arc::new(RedisSessions::new(client, keys, scripts)),
    })
}

/// The settings of every Redis connection (command client and subscriber).
fn builder(options: &RedisOptions) -> Result<Builder, RedisError> {
    let config = Config::from_url(&options.url).map_err(|e| RedisError::Url(e.to_string()))?;
    let mut builder = Builder::from_config(config);
    builder
        .with_config(|c| c.fail_fast = true)
        .with_connection_config(|c| {
            c.connection_timeout = options.connect_timeout;
            c.internal_command_timeout = options.command_timeout;
            // Without it, Nagle's algorithm holds a small command back until the previous
            // segment is acknowledged, and with delayed ACKs that cost ~40 ms per join.
            c.tcp = TcpConfig {
                nodelay: Some(true),
                ..Default::default()
            };
        })
        .with_performance_config(|p| {
            p.default_command_timeout = options.command_timeout;
            p.broadcast_channel_capacity = COMMAND_CLIENT_BUFFER;
        })
        // Forever, 100 ms doubling up to 2 s (plus fred's jitter).
        .set_policy(reconnect_policy());
    Ok(builder)
}

fn reconnect_policy() -> ReconnectPolicy {
    let mut policy = ReconnectPolicy::new_exponential(0, 100, RECONNECT_MAX_DELAY_MS, 2);
    policy.set_jitter(RECONNECT_JITTER_MS);
    policy
}

/// Pub/sub health. The subscriber is listening when it is connected and has subscribed
/// every channel again since it last reconnected: each reconnection clears `listening`,
/// re-subscribes (retrying with back-off until it works), sets it, and then reports lost
/// state, so the engine re-asserts this node's memberships *after* it listens again and its
/// sockets learn the counts they may have missed (see `lua/restore.lua`).
fn watch_subscriber(
    subscriber: &SubscriberClient,
    sharded: bool,
    listening: Arc<AtomicBool>,
    lost: Arc<AtomicBool>,
) {
    let resubscriber = subscriber.clone();
    subscriber.on_reconnect(move |_| {
        let subscriber = resubscriber.clone();
        let listening = listening.clone();
        let lost = lost.clone();
        async move {
            listening.store(false, Ordering::Relaxed);
            let mut delay = Duration::from_millis(100);
            while let Err(e) = broker::resubscribe(&subscriber, sharded).await {
                tracing::warn!(error = %e, "re-subscribing after a reconnection failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            tracing::info!("pub/sub reconnected and re-subscribed");
            // Lost first: a tick between the two stores must not find this node listening
            // and not lost (it would mark itself ready before re-asserting).
            lost.store(true, Ordering::Relaxed);
            listening.store(true, Ordering::Relaxed);
            Ok(())
        }
    });
}

/// Connects a client, or fails within `timeout`.
async fn start(client: &impl ClientLike, timeout: Duration) -> Result<(), RedisError> {
    match tokio::time::timeout(timeout, client.init()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(RedisError::Connect(e.to_string())),
        Err(_) => Err(RedisError::Connect(format!(
            "no connection within {timeout:?}"
        ))),
    }
}

async fn server_major_version(client: &fred::clients::Client) -> Result<u32, fred::error::Error> {
    let info: String = client.info(Some(InfoKind::Server)).await?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .and_then(|v| v.split('.').next())
        .and_then(|major| major.trim().parse().ok())
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_redis_connection_sets_tcp_nodelay() {
        let options = RedisOptions::new("redis://127.0.0.1:6379", "n1", Duration::from_secs(30));
        let builder = builder(&options).unwrap();
        assert_eq!(builder.get_connection_config().tcp.nodelay, Some(true));
        // The subscriber is built from the same builder.
        let subscriber = builder.build_subscriber_client().unwrap();
        assert_eq!(subscriber.connection_config().tcp.nodelay, Some(true));
        let client = builder.build().unwrap();
        assert_eq!(client.connection_config().tcp.nodelay, Some(true));
    }
}
