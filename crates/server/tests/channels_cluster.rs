//! Channels across two nodes that share one backend, through the engine's backend traits
//! only: a shared in-memory presence store and a broker that brings every message to every
//! node (what the Redis backend does with pub/sub). The Redis backend must pass the same
//! scenarios on a real `redis-server`: see the README's channels section.

mod common;

use std::time::Duration;

use activenow::protocol::channels::mint;
use common::shared::shared_memory_backend;
use common::{settings, spawn_with, Client, TestServer};
use serde_json::json;

const SECRET: &str = "cluster-test-secret-0123456789abcdef";

async fn two_nodes(limit: Option<u64>) -> (TestServer, TestServer) {
    let backend = shared_memory_backend();
    let node = |id: &str| {
        let mut s = settings();
        s.node_id = id.into();
        s.jwt_secret = SECRET.into();
        if let Some(n) = limit {
            s.channel_max_users = n.into();
        }
        spawn_with(s, backend.clone())
    };
    (node("node-a").await, node("node-b").await)
}

async fn connect(server: &TestServer, user: &str) -> Client {
    let now = activenow_engine::clock::now_ms();
    let t = mint(SECRET, user, None, None, Duration::from_secs(60), now).unwrap();
    server.ws(&format!("/ws?token={t}")).await
}

async fn subscribe(c: &mut Client, channel: &str) -> serde_json::Value {
    c.send_json(json!({"type":"subscribe","channel":channel}))
        .await;
    c.next_json().await
}

#[tokio::test]
async fn a_publish_on_one_node_reaches_the_other_once() {
    let (a, b) = two_nodes(None).await;
    let mut pub_a = connect(&a, "alice").await;
    let mut peer_a = connect(&a, "bob").await;
    let mut peer_b = connect(&b, "carol").await;
    for c in [&mut pub_a, &mut peer_a, &mut peer_b] {
        assert_eq!(subscribe(c, "mesh").await["type"], "subscribed");
    }
    for n in 0..3 {
        pub_a
            .send_json(json!({"type":"publish","channel":"mesh","event":"e","data":{"n":n}}))
            .await;
    }
    for peer in [&mut peer_a, &mut peer_b] {
        for n in 0..3 {
            let m = peer.expect_type("message").await;
            assert_eq!(
                m["data"],
                json!({"n": n, "from": "alice"}),
                "in order, once"
            );
        }
    }
    // Nothing for the publisher, nothing more for the peers: their next frames are replies.
    assert_eq!(subscribe(&mut pub_a, "other").await["type"], "subscribed");
    assert_eq!(subscribe(&mut peer_b, "other").await["type"], "subscribed");
    // Both nodes see the same channel presence.
    for node in [&a, &b] {
        let room = activenow::protocol::channels::codec::room_of("mesh");
        assert_eq!(node.state().engine.count(&room).await.unwrap(), 3);
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn the_member_limit_holds_across_nodes() {
    let (a, b) = two_nodes(Some(2)).await;
    let mut x = connect(&a, "x").await;
    let mut y = connect(&b, "y").await;
    let mut z = connect(&a, "z").await;
    let mut w = connect(&b, "w").await;
    assert_eq!(subscribe(&mut x, "capped").await["type"], "subscribed");
    assert_eq!(subscribe(&mut y, "capped").await["type"], "subscribed");
    for late in [&mut z, &mut w] {
        assert_eq!(
            subscribe(late, "capped").await["error"]["code"],
            "ROOM_FULL"
        );
    }
    // Another socket of y, on the other node, is not a new member.
    let mut y2 = connect(&a, "y").await;
    assert_eq!(subscribe(&mut y2, "capped").await["type"], "subscribed");
    a.stop().await;
    b.stop().await;
}
