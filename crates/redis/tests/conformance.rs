//! The engine's backend conformance suite on the Redis backend, against a real
//! `redis-server` this test binary starts on a free port (one for all its tests; each test
//! uses its own rooms and its own client).

use std::sync::OnceLock;
use std::time::Duration;

use activenow_engine::Backend;
use activenow_redis::{connect, RedisOptions};
use activenow_testkit::RedisServer;

fn redis() -> Option<&'static RedisServer> {
    static REDIS: OnceLock<Option<RedisServer>> = OnceLock::new();
    REDIS.get_or_init(RedisServer::start).as_ref()
}

async fn backend() -> Option<Backend> {
    let redis = redis()?;
    let options = RedisOptions::new(&redis.url(), "conformance", Duration::from_secs(60));
    Some(
        connect(&options)
            .await
            .expect("connect to the test redis-server"),
    )
}

activenow_engine::conformance_suite!(backend());
