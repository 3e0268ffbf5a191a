//! The engine's backend conformance suite on a real Redis Cluster (three masters, three
//! replicas, started by the test kit). Failovers are in `cluster_failover.rs`.

use std::sync::OnceLock;
use std::time::Duration;

use activenow_engine::Backend;
use activenow_redis::{connect, RedisOptions};
use activenow_testkit::RedisCluster;

fn cluster() -> Option<&'static RedisCluster> {
    static CLUSTER: OnceLock<Option<RedisCluster>> = OnceLock::new();
    CLUSTER.get_or_init(RedisCluster::start).as_ref()
}

async fn backend() -> Option<Backend> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let cluster = cluster()?;
    let mut options = RedisOptions::new(&cluster.url(), "cluster", Duration::from_secs(60));
    // Six servers and twenty tests share two cores: a slow reply here is load, not a fault
    // (the fault tests below set their own timeouts).
    options.command_timeout = Duration::from_secs(10);
    Some(
        connect(&options)
            .await
            .expect("connect to the test Redis Cluster"),
    )
}

activenow_engine::conformance_suite!(backend());
