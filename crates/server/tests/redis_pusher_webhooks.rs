//! Pusher-style webhooks across two real `activenow` processes on one real `redis-server`,
//! both posting to the same receiver (which verifies `X-Pusher-Key` and
//! `X-Pusher-Signature`): a user with a tab on each node gives one `member_added` and one
//! `member_removed`; a node killed with -9 gives its users' `member_removed` once.

mod cluster;
mod common;
mod pusher_hook_support;

use activenow_testkit::RedisServer;
use cluster::{Node, FAST};
use common::{pusher, Client};
use pusher_hook_support::{receiver, KEY, SECRET};

const APP: pusher::App = pusher::App {
    key: KEY,
    secret: SECRET,
};

async fn connect(node: &Node) -> (Client, String) {
    pusher::established(
        node.ws(&format!("/app/{KEY}?protocol=7&client=js&version=8.6.0"))
            .await,
    )
    .await
}

async fn subscribe(c: &mut Client, sid: &str, channel: &str, user: Option<&str>) {
    pusher::subscribe(APP, c, sid, channel, user).await
}

fn node(redis: &RedisServer, name: &str, url: &str) -> Node {
    let mut env: Vec<(&str, &str)> = FAST.to_vec();
    env.extend([
        ("PUSHER_APP_ID", "hooks"),
        ("PUSHER_APP_KEY", KEY),
        ("PUSHER_APP_SECRET", SECRET),
        ("PUSHER_APP_WEBHOOK_URL", url),
        ("WEBHOOK_BACKOFF_MS", "10"),
    ]);
    Node::start(&redis.url(), name, &env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_send_each_pusher_webhook_once() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (url, mut hooks) = receiver().await;
    let a = node(&redis, "a", &url);
    let mut b = node(&redis, "b", &url);

    let (mut alice_a, sid) = connect(&a).await;
    subscribe(&mut alice_a, &sid, "presence-x", Some("alice")).await;
    let (mut alice_b, sid) = connect(&b).await;
    subscribe(&mut alice_b, &sid, "presence-x", Some("alice")).await;
    let (mut bob, sid) = connect(&b).await;
    subscribe(&mut bob, &sid, "presence-x", Some("bob")).await;
    assert_eq!(
        hooks.take(3).await,
        [
            "channel_occupied presence-x",
            "member_added presence-x alice",
            "member_added presence-x bob",
        ]
    );
    // Alice's tab on A goes: nothing. B dies with SIGKILL: Alice's last tab and Bob are
    // reaped by A, one member_removed each.
    alice_a.close().await;
    assert!(b.kill9().is_some());
    let mut gone = hooks.take(2).await;
    gone.sort();
    assert_eq!(
        gone,
        [
            "member_removed presence-x alice",
            "member_removed presence-x bob"
        ]
    );
    assert_eq!(hooks.take(1).await, ["channel_vacated presence-x"]);
    // Nothing else was sent: the next event is a fresh channel's.
    let (mut carol, sid) = connect(&a).await;
    subscribe(&mut carol, &sid, "presence-y", Some("carol")).await;
    assert_eq!(
        hooks.take(2).await,
        [
            "channel_occupied presence-y",
            "member_added presence-y carol"
        ]
    );
}
