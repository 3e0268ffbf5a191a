//! The dashboard's history on Redis: two real `activenow` processes on one real
//! `redis-server` write their samples to the backend, and either node's
//! `GET /v1/stats/history` merges them (sockets summed per slot, cluster figures kept).

mod cluster;
mod common;

use std::time::Duration;

use activenow_testkit::RedisServer;
use cluster::{eventually, Node, FAST};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_merged_across_nodes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let env: Vec<(&str, &str)> = FAST
        .iter()
        .copied()
        .chain([("STATS_SAMPLE_INTERVAL_MS", "200")])
        .collect();
    let a = Node::start(&redis.url(), "a", &env);
    let b = Node::start(&redis.url(), "b", &env);
    let mut on_a = a.ws("/v1/ws?room=stats&socket_session_id=alice").await;
    on_a.expect_type("hello").await;
    let mut on_b = b.ws("/v1/ws?room=stats&socket_session_id=bob").await;
    on_b.expect_type("hello").await;
    // A slot sampled by both nodes after both joined: 2 members (the cluster's figure, not
    // 4), 2 sockets (one per node, summed). Each node's own ring could only say 1 socket.
    eventually(
        "a merged sample with both nodes' sockets",
        Duration::from_secs(20),
        || async {
            let (status, body) = a.get("/v1/stats/history").await;
            status == 200
                && body["merged"] == true
                && body["samples"].as_array().is_some_and(|s| {
                    s.iter()
                        .any(|p| p["connections"] == 2 && p["members"] == 2 && p["rooms"] == 1)
                })
        },
    )
    .await;
    let (_, from_b) = b.get("/v1/stats/history").await;
    assert_eq!(from_b["merged"], true);
    let slots: Vec<u64> = from_b["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["ts"].as_u64().unwrap())
        .collect();
    assert!(
        slots.windows(2).all(|w| w[0] < w[1]),
        "one point per slot, oldest first: {slots:?}"
    );
    assert!(
        slots.iter().all(|t| t % 200 == 0),
        "slots are aligned: {slots:?}"
    );
}
