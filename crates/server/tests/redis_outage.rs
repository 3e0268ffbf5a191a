//! A Redis outage, as the sockets see it: two real `activenow` nodes on one real
//! `redis-server`, watchers on both. Members close while Redis is down; Redis comes back
//! empty. Every watcher must then hear each missed leave exactly once, no second join of
//! anyone who never left, and a count that only goes down to the truth (no dip).

mod cluster;
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use activenow_testkit::RedisServer;
use cluster::{eventually, Node, FAST};
use common::Client;
use serde_json::Value;

const ROOM: &str = "outage";
const PER_NODE: usize = 10;
const CONVERGE: Duration = Duration::from_secs(20);

/// Every frame a watcher received while the outage was reconciled, in order.
#[derive(Default, Debug)]
struct Seen {
    syncs: Vec<u64>,
    joins: Vec<String>,
    leaves: BTreeMap<String, usize>,
}

async fn member(node: &Node, sid: &str) -> Client {
    let mut c = node
        .ws(&format!("/v1/ws?room={ROOM}&socket_session_id={sid}"))
        .await;
    c.expect_type("hello").await;
    c
}

/// Reads until the watcher has seen the join of each of `later` (who joined after it) and
/// the count `n`.
async fn settle(watcher: &mut Client, later: &BTreeSet<String>, n: u64) {
    let mut known = BTreeSet::new();
    let mut count = 0;
    while count != n || known != *later {
        let v = watcher.next_json().await;
        if v["type"] == "sync" {
            count = v["count"].as_u64().unwrap_or(0);
        }
        if v["type"] == "ACTIVITY_JOIN_PRESENCE" {
            let id = v["data"]["identity"].as_str().unwrap_or("").to_owned();
            if later.contains(&id) {
                known.insert(id);
            }
        }
    }
}

/// Records every frame until `pred` holds on what was seen.
async fn record_until(watcher: &mut Client, seen: &mut Seen, pred: impl Fn(&Seen) -> bool) {
    while !pred(seen) {
        let v: Value = watcher.next_json().await;
        let id = v["data"]["identity"].as_str().unwrap_or("").to_owned();
        match v["type"].as_str() {
            Some("sync") => seen.syncs.push(v["count"].as_u64().unwrap_or(0)),
            Some("ACTIVITY_JOIN_PRESENCE") => seen.joins.push(id),
            Some("ACTIVITY_LEAVE_PRESENCE") => *seen.leaves.entry(id).or_default() += 1,
            _ => {}
        }
    }
}

async fn connections(node: &Node) -> u64 {
    let body = reqwest::get(node.url("/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .unwrap_or_default();
    body.lines()
        .find_map(|l| l.strip_prefix("activenow_connections "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(u64::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_redis_after_an_outage_shows_missed_leaves_once_and_no_dip() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    // A lookback long enough that a node still reconnecting is waited for, not given up on.
    let mut env = FAST.to_vec();
    env.push(("PRESENCE_REAPER_LOOKBACK_MS", "8000"));
    let a = Node::start(&redis.url(), "a", &env);
    let b = Node::start(&redis.url(), "b", &env);

    let mut wa = member(&a, "wa").await;
    let mut wb = member(&b, "wb").await;
    let mut on_a = Vec::new();
    let mut on_b = Vec::new();
    for i in 0..PER_NODE {
        on_a.push(member(&a, &format!("ma{i}")).await);
        on_b.push(member(&b, &format!("mb{i}")).await);
    }
    let mut everyone: BTreeSet<String> = ["wa".to_owned(), "wb".to_owned()].into();
    everyone.extend((0..PER_NODE).map(|i| format!("ma{i}")));
    everyone.extend((0..PER_NODE).map(|i| format!("mb{i}")));
    let total = everyone.len() as u64;
    everyone.remove("wa");
    settle(&mut wa, &everyone, total).await;
    everyone.remove("wb");
    settle(&mut wb, &everyone, total).await;

    redis.stop();
    for node in [&a, &b] {
        eventually("not ready without Redis", CONVERGE, || async {
            node.get("/readyz").await.0 == 503
        })
        .await;
    }
    // Three members leave on A and two on B while Redis is unreachable; each node has
    // handled the close (its leave failed) before Redis comes back.
    let gone: BTreeSet<String> = ["ma0", "ma1", "ma2", "mb0", "mb1"].map(String::from).into();
    let a_before = connections(&a).await;
    let b_before = connections(&b).await;
    for c in on_a.drain(..3) {
        c.close().await;
    }
    for c in on_b.drain(..2) {
        c.close().await;
    }
    eventually("A handled its closes", CONVERGE, || async {
        connections(&a).await == a_before - 3
    })
    .await;
    eventually("B handled its closes", CONVERGE, || async {
        connections(&b).await == b_before - 2
    })
    .await;

    redis.restart();
    let remaining = total - gone.len() as u64;
    let mut seen_a = Seen::default();
    let mut seen_b = Seen::default();
    let reconciled = |s: &Seen| {
        s.syncs.last() == Some(&remaining) && gone.iter().all(|id| s.leaves.contains_key(id))
    };
    record_until(&mut wa, &mut seen_a, reconciled).await;
    record_until(&mut wb, &mut seen_b, reconciled).await;

    // A barrier from each node: anything either published before it has arrived.
    let _late_a = member(&a, "late_a").await;
    let _late_b = member(&b, "late_b").await;
    let both_late = |s: &Seen| {
        ["late_a", "late_b"]
            .iter()
            .all(|id| s.joins.iter().any(|j| j == id))
            && s.syncs.last() == Some(&(remaining + 2))
    };
    record_until(&mut wa, &mut seen_a, both_late).await;
    record_until(&mut wb, &mut seen_b, both_late).await;

    for (name, seen) in [("wa", &seen_a), ("wb", &seen_b)] {
        let once: BTreeMap<String, usize> = gone.iter().map(|id| (id.clone(), 1)).collect();
        assert_eq!(seen.leaves, once, "{name}: each missed leave exactly once");
        assert_eq!(
            seen.joins,
            ["late_a", "late_b"],
            "{name}: no join of anyone who never left"
        );
        // The count goes from the total down to the truth, never below it, then up with
        // the two late members.
        let settled = seen.syncs.iter().position(|n| *n == remaining);
        let down = &seen.syncs[..=settled.expect("the count reached the truth")];
        assert!(
            down.windows(2).all(|w| w[0] >= w[1]),
            "{name}: count dipped: {:?}",
            seen.syncs
        );
        assert!(
            seen.syncs.iter().all(|n| *n >= remaining && *n <= total),
            "{name}: count dipped: {:?}",
            seen.syncs
        );
    }
    for node in [&a, &b] {
        assert_eq!(
            node.room_count(ROOM).await,
            remaining + 2,
            "node {}",
            node.name
        );
    }
}
