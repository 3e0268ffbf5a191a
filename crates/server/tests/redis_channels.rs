//! Channels (JWT pub/sub) on two real nodes sharing one `redis-server`: a publication made on
//! one node reaches the other node's subscribers once and never the publisher, and the
//! per-channel member limit holds across nodes.

mod channels_support;
mod cluster;
mod common;

use activenow_testkit::RedisServer;
use channels_support::{error_code, subscribe, token, SECRET};
use cluster::{Node, FAST};
use common::Client;
use serde_json::json;

fn nodes(redis: &RedisServer) -> (Node, Node) {
    let mut env = FAST.to_vec();
    env.push(("JWT_SECRET", SECRET));
    env.push(("CHANNEL_MAX_USERS", "3"));
    (
        Node::start(&redis.url(), "a", &env),
        Node::start(&redis.url(), "b", &env),
    )
}

async fn connect(node: &Node, user: &str) -> Client {
    node.ws(&format!("/ws?token={}", token(user))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publication_crosses_nodes_once_and_skips_the_publisher() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = nodes(&redis);
    let mut alice = connect(&a, "alice").await;
    let mut alice_on_b = connect(&b, "alice").await;
    let mut bob = connect(&b, "bob").await;
    for c in [&mut alice, &mut alice_on_b, &mut bob] {
        assert_eq!(subscribe(c, "lobby").await["type"], "subscribed");
    }
    alice
        .send_json(json!({"type":"publish","channel":"lobby","event":"e","data":{"n":1}}))
        .await;
    let msg = bob.expect_type("message").await;
    assert_eq!(msg["data"], json!({"n": 1, "from": "alice"}));
    // Alice's other socket (another connection) gets it; the publishing socket does not.
    assert_eq!(alice_on_b.expect_type("message").await, msg);
    // The next frames answer the next requests: no duplicate, no echo.
    assert_eq!(subscribe(&mut bob, "other").await["type"], "subscribed");
    assert_eq!(subscribe(&mut alice, "other").await["type"], "subscribed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_member_limit_holds_across_nodes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = nodes(&redis);
    let mut members = Vec::new();
    for (node, user) in [(&a, "u1"), (&b, "u2"), (&a, "u3")] {
        let mut c = connect(node, user).await;
        assert_eq!(subscribe(&mut c, "small").await["type"], "subscribed");
        members.push(c);
    }
    let mut late = connect(&b, "u4").await;
    late.send_json(json!({"type":"subscribe","channel":"small"}))
        .await;
    assert_eq!(error_code(&mut late).await, "ROOM_FULL");
    // A member's second socket, on the other node, is not a new member.
    let mut tab = connect(&b, "u1").await;
    assert_eq!(subscribe(&mut tab, "small").await["type"], "subscribed");
    // Channel rooms are internal (not listed): the count shows as the limit still holding on
    // both nodes after the second tab.
    for node in [&a, &b] {
        let mut again = connect(node, "u5").await;
        again
            .send_json(json!({"type":"subscribe","channel":"small"}))
            .await;
        assert_eq!(
            error_code(&mut again).await,
            "ROOM_FULL",
            "node {}",
            node.name
        );
    }
}
