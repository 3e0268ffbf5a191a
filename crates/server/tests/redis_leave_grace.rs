//! The leave grace across two real nodes on one real `redis-server`: a reload that lands on
//! the other node shows no leave and no join, the grace ending gives exactly one leave on
//! every node, a kick on the other node ends it at once, and a node killed during the grace
//! still gets its lingering members reaped.

mod cluster;
mod common;

use activenow_testkit::RedisServer;
use cluster::{Node, FAST};
use common::Client;
use serde_json::Value;

fn nodes(redis: &RedisServer, grace_ms: &str) -> (Node, Node) {
    let mut env = FAST.to_vec();
    env.push(("PRESENCE_LEAVE_GRACE_MS", grace_ms));
    env.push(("API_KEY", "k"));
    (
        Node::start(&redis.url(), "a", &env),
        Node::start(&redis.url(), "b", &env),
    )
}

async fn join(node: &Node, room: &str, sid: &str) -> Client {
    let mut c = node
        .ws(&format!("/v1/ws?room={room}&socket_session_id={sid}"))
        .await;
    c.expect_type("hello").await;
    c.until(|v| v["type"] == "ACTIVITY_JOIN_PRESENCE" && v["data"]["identity"] == sid)
        .await;
    c
}

/// The next join or leave (syncs skipped): `(type, identity)`.
async fn next_presence(c: &mut Client) -> (String, String) {
    let v = c
        .until(|v| v["type"] == "ACTIVITY_JOIN_PRESENCE" || v["type"] == "ACTIVITY_LEAVE_PRESENCE")
        .await;
    (
        v["type"].as_str().unwrap_or_default().to_owned(),
        v["data"]["identity"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

fn join_of(sid: &str) -> (String, String) {
    ("ACTIVITY_JOIN_PRESENCE".into(), sid.into())
}

fn leave_of(sid: &str) -> (String, String) {
    ("ACTIVITY_LEAVE_PRESENCE".into(), sid.into())
}

/// Waits until `node`'s metrics show `n` lingering connections (state, not an event).
async fn until_lingering(node: &Node, n: u64) {
    let line = format!("activenow_lingering_connections {n}\n");
    let url = node.url("/metrics");
    cluster::eventually(&line, std::time::Duration::from_secs(10), || {
        let (url, line) = (url.clone(), line.clone());
        async move {
            match reqwest::get(&url).await {
                Ok(resp) => resp.text().await.unwrap_or_default().contains(&line),
                Err(_) => false,
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_onto_the_other_node_shows_no_leave_and_no_join() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = nodes(&redis, "60000");
    let mut watcher_a = join(&a, "page", "w").await;
    let alice = join(&a, "page", "alice").await;
    assert_eq!(next_presence(&mut watcher_a).await, join_of("alice"));
    let mut watcher_b = join(&b, "page", "v").await;
    assert_eq!(next_presence(&mut watcher_a).await, join_of("v"));

    alice.close().await;
    let mut again = b.ws("/v1/ws?room=page&socket_session_id=alice").await;
    assert_eq!(again.expect_type("hello").await["count"], 3);

    let _sentinel = join(&b, "page", "s").await;
    assert_eq!(next_presence(&mut watcher_a).await, join_of("s"));
    assert_eq!(next_presence(&mut watcher_b).await, join_of("s"));
    assert_eq!(a.room_count("page").await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grace_ending_gives_one_leave_on_every_node() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = nodes(&redis, "300");
    let mut watcher_b = join(&b, "gone", "w").await;
    let bob = join(&a, "gone", "bob").await;
    assert_eq!(next_presence(&mut watcher_b).await, join_of("bob"));
    bob.close().await;
    assert_eq!(next_presence(&mut watcher_b).await, leave_of("bob"));
    let _sentinel = join(&a, "gone", "s").await;
    assert_eq!(next_presence(&mut watcher_b).await, join_of("s"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kick_on_the_other_node_ends_the_grace() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = nodes(&redis, "60000");
    let mut watcher_b = join(&b, "den", "w").await;
    let kate = join(&a, "den", "kate").await;
    assert_eq!(next_presence(&mut watcher_b).await, join_of("kate"));
    kate.close().await;
    until_lingering(&a, 1).await;

    let resp = reqwest::Client::new()
        .delete(b.url("/v1/users/kate"))
        .header("authorization", "Bearer k")
        .send()
        .await
        .expect("DELETE");
    assert_eq!(resp.status().as_u16(), 200);
    let reply: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(reply["connections"], 1, "{reply}");
    assert_eq!(next_presence(&mut watcher_b).await, leave_of("kate"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_during_the_grace_is_reaped_as_usual() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (mut a, b) = nodes(&redis, "600000");
    let mut watcher_b = join(&b, "crash", "w").await;
    let lea = join(&a, "crash", "lea").await;
    assert_eq!(next_presence(&mut watcher_b).await, join_of("lea"));
    lea.close().await;
    until_lingering(&a, 1).await;
    a.kill9();
    // Node a's liveness refresh stops: b reaps the lingering member (lookback 3 s).
    assert_eq!(next_presence(&mut watcher_b).await, leave_of("lea"));
}
