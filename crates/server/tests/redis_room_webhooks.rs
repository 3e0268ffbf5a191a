//! Room webhooks across two real `activenow` processes on one real `redis-server`, both
//! posting to the same receiver (which verifies every signature): exactly one event per
//! transition whichever node holds the connections, one `member.joined` / `member.left` for
//! an identity with a tab on each node (ActiveNow WebSocket and Socket.IO), and a node killed
//! with -9 reported once as `member.left` with reason `node_lost`.

mod cluster;
mod common;
mod webhook_support;

use activenow_testkit::RedisServer;
use cluster::{Node, FAST};
use common::Client;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use webhook_support::{briefs, Receiver, SECRET};

fn node(redis: &RedisServer, name: &str, hooks: &Receiver) -> Node {
    let mut env: Vec<(&str, &str)> = FAST.to_vec();
    env.extend([
        ("WEBHOOK_URL", hooks.url.as_str()),
        ("WEBHOOK_SECRET", SECRET),
        ("WEBHOOK_EVENTS", "*"),
        ("WEBHOOK_BACKOFF_MS", "10"),
    ]);
    Node::start(&redis.url(), name, &env)
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

/// The next Engine.IO text packet, answering pings.
async fn packet(c: &mut Client) -> String {
    loop {
        let msg = tokio::time::timeout(common::WAIT, c.stream.next())
            .await
            .expect("a packet in time")
            .expect("socket open")
            .expect("no error");
        if let Message::Text(t) = msg {
            if t.as_str() == "2" {
                c.stream.send(Message::text("3")).await.expect("pong");
                continue;
            }
            return t.as_str().to_owned();
        }
    }
}

/// A Socket.IO client joined to `room` as `user` through `presence:join`.
async fn sio_join(node: &Node, room: &str, user: &str) -> Client {
    let mut c = node.ws("/socket.io/?EIO=4&transport=websocket").await;
    assert!(packet(&mut c).await.starts_with('0'));
    c.send_text("40").await;
    while !packet(&mut c).await.starts_with("40{") {}
    let join = json!(["presence:join", {"roomId": room, "userId": user}]);
    c.send_text(&format!("421{join}")).await;
    while !packet(&mut c).await.starts_with("431") {}
    c
}

/// Joins a barrier room on each node and returns every event before both barriers' joins
/// (the barriers' own events left out).
async fn barriers(hooks: &mut Receiver, nodes: &[&Node], tag: &str) -> Vec<Value> {
    let mut clients = Vec::new();
    let mut waiting = Vec::new();
    for n in nodes {
        let room = format!("barrier-{tag}-{}", n.name);
        clients.push(join(n, &room, "barrier").await);
        waiting.push(room);
    }
    let mut out = Vec::new();
    while !waiting.is_empty() {
        let e = hooks.next().await;
        let room = e["room"].as_str().unwrap_or("").to_owned();
        if room.starts_with("barrier-") {
            waiting.retain(|r| *r != room || e["type"] != "member.joined");
            continue;
        }
        out.push(e);
    }
    drop(clients);
    out
}

/// The events of `room`, in the room's order (`version`; one transition's events keep the
/// order their node sent them in).
fn in_room(events: &[Value], room: &str) -> Vec<Value> {
    let mut mine: Vec<Value> = events
        .iter()
        .filter(|e| e["room"] == room)
        .cloned()
        .collect();
    mine.sort_by_key(|e| e["version"].as_u64().unwrap_or(0));
    mine
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_send_each_transition_once_and_a_killed_node_once() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut hooks = Receiver::start().await;
    let a = node(&redis, "a", &hooks);
    let mut b = node(&redis, "b", &hooks);

    // Alice: an ActiveNow tab on A and a Socket.IO tab on B. Bob: on B.
    let alice_a = join(&a, "shared", "alice").await;
    let alice_b = sio_join(&b, "shared", "alice").await;
    let bob = join(&b, "shared", "bob").await;
    let (status, _) = a
        .post(
            "/v1/activity/presence/update",
            &[("x-socket-session-id", "bob")],
            r#"{"room_name":"shared","display_name":"Bob"}"#,
        )
        .await;
    assert_eq!(status, 200);
    alice_a.close().await;
    let events = barriers(&mut hooks, &[&a, &b], "1").await;
    assert_eq!(
        briefs(&in_room(&events, "shared")),
        [
            "room.occupied shared alice",
            "member.joined shared alice",
            "member.joined shared bob",
            "member.updated shared bob",
        ],
        "{events:?}"
    );
    assert_eq!(events.len(), 4, "nothing else: {events:?}");

    // Alice's last tab (Socket.IO on B) leaves, then Bob.
    alice_b.close().await;
    bob.close().await;
    let events = barriers(&mut hooks, &[&a, &b], "2").await;
    assert_eq!(
        briefs(&in_room(&events, "shared")),
        [
            "member.left shared alice leave",
            "member.left shared bob leave",
            "room.vacated shared bob leave",
        ],
        "{events:?}"
    );
    assert_eq!(events.len(), 3, "nothing else: {events:?}");

    // Henry on B, Ivy on A; B dies with SIGKILL. A reaps Henry: one member.left node_lost.
    let _ivy = join(&a, "doomed", "ivy").await;
    let _henry = join(&b, "doomed", "henry").await;
    let events = barriers(&mut hooks, &[&a, &b], "3").await;
    assert_eq!(
        briefs(&in_room(&events, "doomed")),
        [
            "room.occupied doomed ivy",
            "member.joined doomed ivy",
            "member.joined doomed henry",
        ]
    );
    assert!(b.kill9().is_some());
    let mut lost = Vec::new();
    loop {
        let e = hooks.next().await;
        // Barrier rooms (their members closing, or reaped with B) are not counted.
        if e["room"].as_str().unwrap_or("").starts_with("barrier-") {
            continue;
        }
        assert_eq!(e["room"], "doomed", "{e}");
        lost.push(e);
        break;
    }
    let events = barriers(&mut hooks, &[&a], "4").await;
    lost.extend(events);
    assert_eq!(
        briefs(&lost),
        ["member.left doomed henry node_lost"],
        "{lost:?}"
    );
    assert_eq!(lost[0]["data"]["count"], 1);
}
