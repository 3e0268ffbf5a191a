//! Many nodes, one truth: three real `activenow` processes on one real `redis-server`.
//! Clients on different nodes see the same counts and the same events; a node killed with
//! SIGKILL is cleaned up by the others, once; a Redis restart converges; a node refuses to
//! start without its Redis.

mod cluster;
mod common;

use std::time::Duration;

use activenow_testkit::{free_port, spawn_tied, RedisServer};
use cluster::{eventually, join, until_join, until_sync, Node, FAST};
use serde_json::json;

const CONVERGE: Duration = Duration::from_secs(20);

fn three_nodes(redis: &RedisServer, env: &[(&str, &str)]) -> [Node; 3] {
    ["a", "b", "c"].map(|name| Node::start(&redis.url(), name, env))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_and_events_agree_across_nodes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let [a, b, c] = three_nodes(&redis, FAST);

    let (mut alice, _) = join(&a, "lobby", "alice").await;
    let (mut bob, bob_own) = join(&b, "lobby", "bob").await;
    // Alice, on another node, sees Bob's join exactly as Bob's own node renders it.
    assert_eq!(until_join(&mut alice, "bob").await, bob_own);
    until_sync(&mut alice, 2).await;

    let (mut carol, carol_own) = join(&c, "lobby", "carol").await;
    assert_eq!(until_join(&mut alice, "carol").await, carol_own);
    assert_eq!(until_join(&mut bob, "carol").await, carol_own);
    until_sync(&mut alice, 3).await;
    until_sync(&mut bob, 3).await;

    for node in [&a, &b, &c] {
        assert_eq!(node.room_count("lobby").await, 3, "node {}", node.name);
        let (status, list) = node.get("/v1/activity/presence?room_name=lobby").await;
        assert_eq!(status, 200);
        let mut ids: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["identity"].as_str().unwrap())
            .collect();
        ids.sort();
        assert_eq!(ids, ["alice", "bob", "carol"], "node {}", node.name);
        let (_, active) = node.get("/v1/rooms/active").await;
        assert_eq!(active[0]["room"], "lobby");
        assert_eq!(active[0]["count"], 3);
    }

    // An HTTP update made on node C reaches Alice on node A.
    let (status, _) = c
        .post(
            "/v1/activity/presence/update",
            &[("x-socket-session-id", "alice")],
            r#"{"room_name":"lobby","display_name":"Alice","position":7}"#,
        )
        .await;
    assert_eq!(status, 200);
    let update = alice.until_type("ACTIVITY_UPDATE_PRESENCE").await;
    assert_eq!(update["data"]["displayName"], "Alice");
    assert_eq!(update["data"]["position"], 7);
    assert_eq!(bob.until_type("ACTIVITY_UPDATE_PRESENCE").await, update);

    // Bob leaves on node B: A and C see it once, with the new count.
    bob.close().await;
    for client in [&mut alice, &mut carol] {
        let leave = client.until_type("ACTIVITY_LEAVE_PRESENCE").await;
        assert_eq!(
            leave,
            json!({"type": "ACTIVITY_LEAVE_PRESENCE", "data": {"identity": "bob", "roomName": "lobby"}})
        );
        until_sync(client, 2).await;
    }

    // Visitors: one per identity across nodes; today's figures agree everywhere.
    let mut v1 = a.ws("/web?socket_session_id=v1").await;
    v1.expect_type("GATEWAY_CONNECT").await;
    v1.until(|v| v["type"] == "VISITOR_ONLINE" && v["data"]["online"] == 1)
        .await;
    let mut v2 = b.ws("/web?socket_session_id=v2").await;
    v2.expect_type("GATEWAY_CONNECT").await;
    v1.until(|v| v["type"] == "VISITOR_ONLINE" && v["data"]["online"] == 2)
        .await;
    let mut v2_tab = c.ws("/web?socket_session_id=v2").await;
    v2_tab.expect_type("GATEWAY_CONNECT").await;
    let online = v2_tab.expect_type("VISITOR_ONLINE").await;
    assert_eq!(
        online["data"]["online"], 2,
        "a second tab is not a new visitor"
    );
    for node in [&a, &b, &c] {
        let (status, today) = node.get("/v1/metrics/online/today").await;
        assert_eq!(status, 200);
        assert_eq!(today["backend"], "redis");
        assert_eq!(today["max"], 2);
        assert_eq!(today["total"], 2);
        let (status, ready) = node.get("/readyz").await;
        assert_eq!((status, &ready["backend"]), (200, &json!("redis")));
    }
    alice.close().await;
    carol.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_is_reaped_once_by_the_others() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let [a, b, mut c] = three_nodes(&redis, FAST);
    let (mut alice, _) = join(&a, "doomed", "alice").await;
    let (mut bob, _) = join(&b, "doomed", "bob").await;
    let (_carol, _) = join(&c, "doomed", "carol").await;
    until_sync(&mut alice, 3).await;
    until_sync(&mut bob, 3).await;
    let mut va = a.ws("/web?socket_session_id=va").await;
    va.expect_type("GATEWAY_CONNECT").await;
    let mut vc = c.ws("/web?socket_session_id=vc").await;
    vc.expect_type("GATEWAY_CONNECT").await;
    va.until(|v| v["type"] == "VISITOR_ONLINE" && v["data"]["online"] == 2)
        .await;

    assert!(c.kill9().is_some());

    // Within lookback + reaper interval the survivors remove C's connections and tell their
    // sockets: LEAVE + sync for the room, VISITOR_OFFLINE for the visitor.
    let mut leaves = 0;
    loop {
        let v = alice.next_json().await;
        if v["type"] == "ACTIVITY_LEAVE_PRESENCE" {
            assert_eq!(v["data"]["identity"], "carol");
            leaves += 1;
        }
        if v["type"] == "sync" && v["count"] == 2 {
            break;
        }
    }
    let offline = va.until_type("VISITOR_OFFLINE").await;
    assert_eq!(offline["data"]["sessionId"], "vc");
    assert_eq!(offline["data"]["online"], 1);
    for node in [&a, &b] {
        assert_eq!(node.room_count("doomed").await, 2, "node {}", node.name);
    }

    // Barriers from both survivors: every message before them is counted. Carol left once.
    let (_d, _) = join(&a, "doomed", "dave").await;
    let (_e, _) = join(&b, "doomed", "erin").await;
    let mut seen = (false, false);
    while seen != (true, true) {
        let v = alice.next_json().await;
        match (v["type"].as_str(), v["data"]["identity"].as_str()) {
            (Some("ACTIVITY_LEAVE_PRESENCE"), _) => leaves += 1,
            (Some("ACTIVITY_JOIN_PRESENCE"), Some("dave")) => seen.0 = true,
            (Some("ACTIVITY_JOIN_PRESENCE"), Some("erin")) => seen.1 = true,
            _ => {}
        }
    }
    assert_eq!(leaves, 1, "carol's leave was emitted exactly once");
    let mut offline = 0;
    let mut vb = b.ws("/web?socket_session_id=vb").await;
    vb.expect_type("GATEWAY_CONNECT").await;
    loop {
        let v = va.next_json().await;
        if v["type"] == "VISITOR_OFFLINE" {
            offline += 1;
        }
        if v["type"] == "VISITOR_ONLINE" && v["data"]["online"] == 2 {
            break;
        }
    }
    assert_eq!(offline, 0, "no second VISITOR_OFFLINE for vc");
    bob.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_converges() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let [a, b, c] = three_nodes(&redis, FAST);
    let (mut alice, _) = join(&a, "phoenix", "alice").await;
    let (mut bob, _) = join(&b, "phoenix", "bob").await;
    let (mut carol, _) = join(&c, "phoenix", "carol").await;
    until_sync(&mut alice, 3).await;

    redis.stop();
    // Not ready while Redis is gone; sockets stay open and keep answering.
    let (status, body) = a.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    alice.send_json(json!({"type": "nope"})).await;
    assert!(alice.until_type("error").await["code"].is_string());

    redis.restart();
    // Every node reconnects (commands and pub/sub) and re-asserts: the empty Redis fills up
    // again.
    for node in [&a, &b, &c] {
        eventually("ready again", CONVERGE, || async {
            node.get("/readyz").await.0 == 200
        })
        .await;
    }
    for node in [&a, &b, &c] {
        eventually("counts re-asserted", CONVERGE, || async {
            node.room_count("phoenix").await == 3
        })
        .await;
    }
    // The sockets listen again and their counts are right: a new member is seen by all,
    // with the new count.
    let (_dave, _) = join(&b, "phoenix", "dave").await;
    for client in [&mut alice, &mut bob, &mut carol] {
        until_join(client, "dave").await;
        until_sync(client, 4).await;
    }
    alice.close().await;
}

#[tokio::test]
async fn start_up_without_redis_fails_with_a_clear_message() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_activenow"));
    cmd.env("REDIS_URL", &url)
        .env("PORT", free_port().to_string())
        .env("BIND", "127.0.0.1")
        .env("REDIS_TIMEOUT_MS", "500")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let child = spawn_tied(cmd).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Redis"), "{stderr}");
}
