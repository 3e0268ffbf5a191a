//! Push sessions and online-status records on Redis, across two real `activenow` processes
//! sharing one real `redis-server` (the same scenarios as `online_cluster.rs`, which runs
//! them on a shared memory backend): a QR confirm on node A reaches the socket waiting on
//! node B; a session created on A expires on B's socket exactly once; a player logged in on
//! A is listed and looked up the same on B.

mod cluster;
mod common;

use activenow_testkit::RedisServer;
use cluster::{Node, FAST};
use common::Ended;
use serde_json::json;

const AUTH: [(&str, &str); 1] = [("authorization", "Bearer k")];

fn two_nodes(redis: &RedisServer) -> [Node; 2] {
    let mut env = FAST.to_vec();
    env.extend([("API_KEY", "k"), ("SESSION_EXPIRY_CHECK_MS", "50")]);
    ["a", "b"].map(|name| Node::start(&redis.url(), name, &env))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_on_one_node_reaches_the_socket_on_the_other() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let [a, b] = two_nodes(&redis);
    let (status, body) = a.post("/v1/qr-login/generate", &[], "{}").await;
    assert_eq!(status, 200, "{body}");
    let id = body["session_id"].as_str().unwrap().to_owned();
    let mut ws = b.ws(&format!("/v1/ws/qr/{id}")).await;
    assert_eq!(ws.next_json().await["status"], "connected");
    let confirm = json!({"session_id": id, "web_token": "w"}).to_string();
    assert_eq!(a.post("/v1/qr-login/confirm", &AUTH, &confirm).await.0, 200);
    assert_eq!(ws.next_json().await["web_token"], "w");
    assert_eq!(ws.ended().await, Ended::Closed(Some(1000)));
    // Finished for every node, not only the one that pushed.
    assert_eq!(b.post("/v1/qr-login/confirm", &AUTH, &confirm).await.0, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_expires_once_on_the_other_node() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let [a, b] = two_nodes(&redis);
    let (status, body) = a.post("/v1/sessions", &[], r#"{"ttl_secs":1}"#).await;
    assert_eq!(status, 200, "{body}");
    let id = body["session_id"].as_str().unwrap().to_owned();
    let mut ws = b.ws(&format!("/v1/ws/session/{id}")).await;
    assert_eq!(ws.next_json().await["status"], "connected");
    // Both nodes run the expiry pass every 50 ms; the claim in Redis lets one report it. The
    // socket closes after the first `expired`, so "once" itself is checked at the store level
    // (the conformance check `sessions_follow_their_contract` on Redis).
    assert_eq!(ws.next_json().await["status"], "expired");
    assert_eq!(ws.ended().await, Ended::Closed(Some(1000)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_logged_in_on_one_node_is_listed_on_the_other() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let [a, b] = two_nodes(&redis);
    let login = r#"{"playerId":"p","playerName":"Pat"}"#;
    assert_eq!(a.post("/api/online/login", &[], login).await.0, 200);
    for node in [&a, &b] {
        let (_, list) = node.get("/api/online/players").await;
        assert_eq!(
            (list["count"].clone(), list["total"].clone()),
            (json!(1), json!(1)),
            "node {}: {list}",
            node.name
        );
        let (_, one) = node.get("/api/online/player/p").await;
        assert_eq!(one["status"], "online", "node {}: {one}", node.name);
    }
    // A logout on B is seen on A.
    assert_eq!(
        b.post("/api/online/logout", &[], r#"{"playerId":"p"}"#)
            .await
            .0,
        200
    );
    assert_eq!(a.get("/api/online/player/p").await.1["status"], "offline");
    let (_, list) = a.get("/api/online/players").await;
    assert_eq!(list["count"], 0, "{list}");
}
