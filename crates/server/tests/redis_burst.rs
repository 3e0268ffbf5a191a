//! 1,000 seed-0 room sockets spread over three real `activenow` nodes on one `redis-server`:
//! they connect at once, a third of them close at once, and every count ends exact, on every
//! node's HTTP API and on every remaining socket.

mod cluster;
mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use activenow_testkit::RedisServer;
use cluster::{eventually, Node, FAST};
use common::Client;

const CLIENTS: usize = 1000;
const ROOMS: usize = 10;
/// Identities repeat (two tabs each), so deduplication is tested under concurrency too.
const IDENTITIES: usize = 500;

fn room(i: usize) -> String {
    format!("burst{}", i % ROOMS)
}

fn leaves(i: usize) -> bool {
    // Independent of the node (i % 3), so every node has leavers and stayers.
    (i / 3).is_multiple_of(3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_over_three_nodes_end_with_exact_counts() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    // Debug builds on two shared cores: give a burst of Redis calls time to queue, and a
    // node whose reaper tick is late for a moment is not taken for dead (not tested here).
    let mut env = FAST.to_vec();
    env.push(("REDIS_TIMEOUT_MS", "10000"));
    env.push(("PRESENCE_REAPER_LOOKBACK_MS", "20000"));
    let nodes = std::sync::Arc::new(["a", "b", "c"].map(|n| Node::start(&redis.url(), n, &env)));

    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let nodes = nodes.clone();
        tasks.push(tokio::spawn(async move {
            let node = &nodes[i % 3];
            let sid = format!("u{}", i % IDENTITIES);
            let mut c = node
                .ws(&format!("/v1/ws?room={}&socket_session_id={sid}", room(i)))
                .await;
            c.expect_type("hello").await;
            if leaves(i) {
                c.close().await;
                None
            } else {
                Some((i, c))
            }
        }));
    }
    let mut stay: Vec<(usize, Client)> = Vec::new();
    for t in tasks {
        if let Some(c) = t.await.unwrap() {
            stay.push(c);
        }
    }

    eprintln!(
        "{CLIENTS} clients connected, a third closed, in {:?}",
        started.elapsed()
    );
    let mut expected: HashMap<String, u64> = HashMap::new();
    for r in 0..ROOMS {
        let ids: HashSet<usize> = stay
            .iter()
            .filter(|(i, _)| i % ROOMS == r)
            .map(|(i, _)| i % IDENTITIES)
            .collect();
        expected.insert(room(r), ids.len() as u64);
    }
    // Closing sockets leave asynchronously on their nodes: wait for the store to settle.
    for node in nodes.iter() {
        eventually(
            "exact counts on every node",
            Duration::from_secs(30),
            || {
                let expected = expected.clone();
                async move {
                    let (_, v) = node.get("/v1/activity/rooms").await;
                    expected
                        .iter()
                        .all(|(room, n)| v["room_count"][room].as_u64().unwrap_or(0) == *n)
                }
            },
        )
        .await;
    }

    // One more member per room, joined last: every remaining socket sees it, and its count
    // ends at the room's final count.
    let mut barriers = Vec::new();
    for r in 0..ROOMS {
        let mut c = nodes[r % 3]
            .ws(&format!(
                "/v1/ws?room={}&socket_session_id=barrier{r}",
                room(r)
            ))
            .await;
        let hello = c.expect_type("hello").await;
        assert_eq!(hello["count"], expected[&room(r)] + 1);
        barriers.push(c);
    }
    for (i, c) in stay.iter_mut() {
        let i = *i;
        let want = expected[&room(i)] + 1;
        let barrier = format!("barrier{}", i % ROOMS);
        let mut last_sync = None;
        loop {
            let v = c.next_json().await;
            if v["type"] == "sync" {
                last_sync = v["count"].as_u64();
            }
            if v["type"] == "ACTIVITY_JOIN_PRESENCE" && v["data"]["identity"] == barrier {
                break;
            }
        }
        if last_sync != Some(want) {
            // The barrier's count follows its join frame.
            let v = c.expect_type("sync").await;
            last_sync = v["count"].as_u64();
        }
        assert_eq!(last_sync, Some(want), "socket {i} in {}", room(i));
    }
    for node in nodes.iter() {
        for r in 0..ROOMS {
            assert_eq!(
                node.room_count(&room(r)).await,
                expected[&room(r)] + 1,
                "node {}",
                node.name
            );
        }
    }
    for (_, c) in stay {
        c.close().await;
    }
    for c in barriers {
        c.close().await;
    }
}
