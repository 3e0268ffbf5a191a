//! Pusher subscription count events (`pusher_internal:subscription_count`) over real sockets:
//! on one node (memory) and on two real `activenow` processes sharing one real
//! `redis-server`, the count of a public or private channel moves 1 -> 2 -> 1 for its
//! subscribers; presence channels and apps without the switch get none.

mod cluster;
mod common;

use activenow_testkit::RedisServer;
use cluster::{Node, FAST};
use common::{pusher, settings, spawn, Client, TestServer};
use serde_json::{json, Value};

const APP: pusher::App = pusher::App {
    key: KEY,
    secret: SECRET,
};

use pusher::established;

async fn subscribe(c: &mut Client, sid: &str, channel: &str, user: Option<&str>) {
    pusher::subscribe(APP, c, sid, channel, user).await
}

const KEY: &str = "count-key";
const SECRET: &str = "count-secret";
const PATH: &str = "/app/count-key?protocol=7&client=js&version=8.6.0";

/// The next subscription count of `channel` (its `data` is a JSON string, as Pusher's).
async fn count(c: &mut Client, channel: &str) -> u64 {
    let v = c
        .until(|v| v["event"] == "pusher_internal:subscription_count" && v["channel"] == channel)
        .await;
    let data: Value = serde_json::from_str(v["data"].as_str().expect("data is a string")).unwrap();
    data["subscription_count"].as_u64().expect("a count")
}

/// Frames up to the pong of a ping sent now: what the server had queued for `c`.
async fn until_pong(c: &mut Client) -> Vec<Value> {
    c.send_json(json!({"event": "pusher:ping", "data": {}}))
        .await;
    let mut seen = Vec::new();
    loop {
        let v = c.next_json().await;
        if v["event"] == "pusher:pong" {
            return seen;
        }
        seen.push(v);
    }
}

fn app_settings(enabled: bool) -> activenow::Settings {
    activenow::Settings {
        pusher_app_id: "counts".into(),
        pusher_app_key: KEY.into(),
        pusher_app_secret: SECRET.into(),
        pusher_subscription_count_events: enabled,
        ..settings()
    }
}

async fn connect(server: &TestServer) -> (Client, String) {
    established(server.ws(PATH).await).await
}

#[tokio::test]
async fn counts_move_one_two_one_on_public_and_private_channels() {
    let server = spawn(app_settings(true)).await;
    for channel in ["news", "private-news"] {
        let (mut a, sid) = connect(&server).await;
        subscribe(&mut a, &sid, channel, None).await;
        assert_eq!(count(&mut a, channel).await, 1);
        let (mut b, sid) = connect(&server).await;
        subscribe(&mut b, &sid, channel, None).await;
        assert_eq!(count(&mut a, channel).await, 2);
        assert_eq!(count(&mut b, channel).await, 2);
        b.send_json(json!({"event": "pusher:unsubscribe", "data": {"channel": channel}}))
            .await;
        assert_eq!(count(&mut a, channel).await, 1);
        b.close().await;
        a.close().await;
    }
    server.stop().await;
}

#[tokio::test]
async fn no_counts_on_presence_channels_nor_when_the_app_does_not_enable_them() {
    let server = spawn(app_settings(true)).await;
    let (mut a, sid) = connect(&server).await;
    subscribe(&mut a, &sid, "presence-room", Some("alice")).await;
    let (mut b, sid) = connect(&server).await;
    subscribe(&mut b, &sid, "presence-room", Some("bob")).await;
    let seen = until_pong(&mut a).await;
    assert!(
        seen.iter()
            .any(|v| v["event"] == "pusher_internal:member_added"),
        "{seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|v| v["event"] == "pusher_internal:subscription_count"),
        "{seen:?}"
    );
    server.stop().await;

    let server = spawn(app_settings(false)).await;
    let (mut a, sid) = connect(&server).await;
    subscribe(&mut a, &sid, "news", None).await;
    let (mut b, sid) = connect(&server).await;
    subscribe(&mut b, &sid, "news", None).await;
    // Through the same node: a frame B's join had queued for A arrives before A's pong.
    let seen = until_pong(&mut a).await;
    assert!(seen.is_empty(), "{seen:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_are_exact_across_two_nodes_over_redis() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let start = |name: &str| {
        let mut env: Vec<(&str, &str)> = FAST.to_vec();
        env.extend([
            ("PUSHER_APP_ID", "counts"),
            ("PUSHER_APP_KEY", KEY),
            ("PUSHER_APP_SECRET", SECRET),
            ("PUSHER_SUBSCRIPTION_COUNT_EVENTS", "true"),
        ]);
        Node::start(&redis.url(), name, &env)
    };
    let (a, b) = (start("a"), start("b"));
    let (mut on_a, sid) = established(a.ws(PATH).await).await;
    subscribe(&mut on_a, &sid, "private-x", None).await;
    assert_eq!(count(&mut on_a, "private-x").await, 1);
    let (mut on_b, sid) = established(b.ws(PATH).await).await;
    subscribe(&mut on_b, &sid, "private-x", None).await;
    assert_eq!(count(&mut on_b, "private-x").await, 2);
    assert_eq!(count(&mut on_a, "private-x").await, 2);
    on_b.close().await;
    assert_eq!(count(&mut on_a, "private-x").await, 1);
}
