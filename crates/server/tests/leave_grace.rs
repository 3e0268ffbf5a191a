//! The leave grace (`PRESENCE_LEAVE_GRACE_MS`) on one node, through real sockets: a reload
//! within the grace shows no leave and no join (ActiveNow, Pusher presence), Socket.IO sees
//! connections (the new one joins, the old one leaves when the grace ends), the grace ending
//! gives exactly one leave, the cap, a kick and shutdown end it at once.
//!
//! "Nothing happened" is asserted by ordering: a sentinel member joins after the reload, and
//! the first event the watcher hears is the sentinel's join. Reload tests use a long grace (no
//! timing involved); expiry tests a short one and await the leave.

mod cluster;
mod common;

use std::time::Duration;

use activenow::protocol::pusher::auth::sign;
use activenow::Settings;
use cluster::eventually;
use common::eio::{event, Eio, WEBSOCKET};
use common::{settings, spawn, Client, TestServer};
use serde_json::{json, Value};

const LONG: u64 = 60_000;
const SHORT: u64 = 300;

fn grace(ms: u64) -> Settings {
    Settings {
        presence_leave_grace_ms: ms,
        api_key: "k".into(),
        pusher_app_id: "app1".into(),
        pusher_app_key: "key1".into(),
        pusher_app_secret: "secret1".into(),
        ..settings()
    }
}

async fn join(server: &TestServer, room: &str, sid: &str) -> Client {
    let mut c = server
        .ws(&format!("/v1/ws?room={room}&socket_session_id={sid}"))
        .await;
    c.expect_type("hello").await;
    c.until(|v| v["type"] == "ACTIVITY_JOIN_PRESENCE" && v["data"]["identity"] == sid)
        .await;
    c
}

/// The next join or leave the watcher hears (syncs skipped): `(type, identity)`.
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

async fn until_lingering(server: &TestServer, n: usize) {
    let engine = server.state().engine.clone();
    eventually(
        &format!("{n} lingering connections"),
        Duration::from_secs(10),
        || {
            let engine = engine.clone();
            async move { engine.lingering_connections() == n }
        },
    )
    .await;
}

#[tokio::test]
async fn a_reload_within_the_grace_shows_no_leave_and_no_join() {
    let server = spawn(grace(LONG)).await;
    let mut watcher = join(&server, "page", "w").await;
    let alice = join(&server, "page", "alice").await;
    assert_eq!(next_presence(&mut watcher).await, join_of("alice"));
    assert_eq!(watcher.expect_type("sync").await["count"], 2);

    alice.close().await;
    let mut again = server.ws("/v1/ws?room=page&socket_session_id=alice").await;
    assert_eq!(again.expect_type("hello").await["count"], 2);
    until_lingering(&server, 1).await;
    let (_, http) = server.get("/v1/activity/rooms").await;
    assert_eq!(http["room_count"]["page"], 2, "{http}");

    // The first thing the watcher hears next is the sentinel: no leave, no join, no sync.
    let _sentinel = join(&server, "page", "s").await;
    assert_eq!(
        watcher.expect_type("ACTIVITY_JOIN_PRESENCE").await["data"]["identity"],
        "s"
    );
    assert_eq!(watcher.expect_type("sync").await["count"], 3);

    // The old connection's grace ending later is not an identity leave either: alice is
    // still there on the new one. Kicking nobody else, shutdown leaves it.
    server.stop().await;
}

#[tokio::test]
async fn the_grace_ending_gives_exactly_one_leave() {
    let server = spawn(grace(SHORT)).await;
    let mut watcher = join(&server, "gone", "w").await;
    let bob = join(&server, "gone", "bob").await;
    assert_eq!(next_presence(&mut watcher).await, join_of("bob"));
    bob.close().await;
    // The leave, and no other join or leave before it.
    assert_eq!(next_presence(&mut watcher).await, leave_of("bob"));
    assert_eq!(watcher.expect_type("sync").await["count"], 1);
    let _sentinel = join(&server, "gone", "s").await;
    assert_eq!(next_presence(&mut watcher).await, join_of("s"));
    assert_eq!(server.state().engine.lingering_connections(), 0);
    server.stop().await;
}

#[tokio::test]
async fn beyond_the_cap_a_drop_leaves_at_once() {
    let server = spawn(Settings {
        presence_leave_grace_max_pending: 1,
        ..grace(LONG)
    })
    .await;
    let mut watcher = join(&server, "cap", "w").await;
    let a = join(&server, "cap", "a").await;
    let b = join(&server, "cap", "b").await;
    assert_eq!(next_presence(&mut watcher).await, join_of("a"));
    assert_eq!(next_presence(&mut watcher).await, join_of("b"));

    a.close().await;
    until_lingering(&server, 1).await;
    b.close().await;
    // a lingers (the one slot), b leaves at once.
    assert_eq!(next_presence(&mut watcher).await, leave_of("b"));
    let (_, metrics) = server.get_text("/metrics").await;
    assert!(
        metrics.contains("activenow_leave_grace_overflows_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("activenow_lingering_connections 1"));
    let _sentinel = join(&server, "cap", "s").await;
    assert_eq!(next_presence(&mut watcher).await, join_of("s"));
    server.stop().await;
}

#[tokio::test]
async fn a_kick_during_the_grace_leaves_at_once_and_shutdown_leaves_the_rest() {
    let server = spawn(grace(LONG)).await;
    let mut watcher = join(&server, "den", "w").await;
    let kate = join(&server, "den", "kate").await;
    let lou = join(&server, "den", "lou").await;
    assert_eq!(next_presence(&mut watcher).await, join_of("kate"));
    assert_eq!(next_presence(&mut watcher).await, join_of("lou"));
    kate.close().await;
    lou.close().await;
    until_lingering(&server, 2).await;

    let resp = reqwest::Client::new()
        .delete(server.url("/v1/users/kate"))
        .header("authorization", "Bearer k")
        .send()
        .await
        .expect("DELETE");
    assert_eq!(resp.status().as_u16(), 200);
    let reply: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(reply["connections"], 1, "{reply}");
    assert_eq!(next_presence(&mut watcher).await, leave_of("kate"));
    until_lingering(&server, 1).await;

    let engine = server.state().engine.clone();
    server.stop().await;
    assert_eq!(engine.room_counts().await.unwrap(), vec![]);
}

// --- Pusher presence channels: member_added / member_removed are per user.

async fn pusher_hello(c: &mut Client) -> String {
    let v = c
        .until(|v| v["event"] == "pusher:connection_established")
        .await;
    let data: Value = serde_json::from_str(v["data"].as_str().unwrap_or("{}")).unwrap();
    data["socket_id"].as_str().unwrap_or_default().to_owned()
}

async fn pusher_join(server: &TestServer, channel: &str, user: &str) -> (Client, Value) {
    let mut c = server.ws("/app/key1?protocol=7").await;
    let socket_id = pusher_hello(&mut c).await;
    let channel_data = json!({"user_id": user}).to_string();
    let sig = sign("secret1", &format!("{socket_id}:{channel}:{channel_data}"));
    c.send_json(json!({"event": "pusher:subscribe", "data": {
        "channel": channel, "auth": format!("key1:{sig}"), "channel_data": channel_data}}))
        .await;
    let v = c
        .until(|v| v["event"] == "pusher_internal:subscription_succeeded")
        .await;
    let data = serde_json::from_str(v["data"].as_str().unwrap_or("{}")).unwrap();
    (c, data)
}

/// The next member_added / member_removed: `(event, user_id)`.
async fn next_member(c: &mut Client) -> (String, String) {
    let v = c
        .until(|v| {
            v["event"] == "pusher_internal:member_added"
                || v["event"] == "pusher_internal:member_removed"
        })
        .await;
    let data: Value = serde_json::from_str(v["data"].as_str().unwrap_or("{}")).unwrap();
    (
        v["event"].as_str().unwrap_or_default().to_owned(),
        data["user_id"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn pusher_presence_sees_no_member_removed_for_a_reload() {
    let server = spawn(grace(LONG)).await;
    let (mut bob, _) = pusher_join(&server, "presence-r", "bob").await;
    let (alice, _) = pusher_join(&server, "presence-r", "alice").await;
    assert_eq!(
        next_member(&mut bob).await,
        ("pusher_internal:member_added".into(), "alice".into())
    );
    alice.close().await;
    let (_alice, data) = pusher_join(&server, "presence-r", "alice").await;
    assert_eq!(data["presence"]["count"], 2, "{data}");
    let (_carol, _) = pusher_join(&server, "presence-r", "carol").await;
    assert_eq!(
        next_member(&mut bob).await,
        ("pusher_internal:member_added".into(), "carol".into()),
        "no member_removed / member_added for alice's reload"
    );
    server.stop().await;
}

// --- Socket.IO: events per connection (connId).

async fn sio_join(server: &TestServer, room: &str, user: &str) -> (Eio, String) {
    let (eio, conn, _) = sio_join_ack(server, room, user).await;
    (eio, conn)
}

async fn sio_join_ack(server: &TestServer, room: &str, user: &str) -> (Eio, String, Value) {
    let mut eio = Eio::open(server, WEBSOCKET).await.expect("open");
    eio.connect().await;
    let ack = eio.join(room, user).await;
    let ack = if ack.is_array() { ack[0].clone() } else { ack };
    assert_eq!(ack["ok"], true, "{ack}");
    let conn = ack["self"]["connId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (eio, conn, ack)
}

/// The next `presence:event` of type join or leave: `(type, userId, connId)`.
async fn next_sio_presence(eio: &mut Eio) -> (String, String, String) {
    loop {
        let Some((name, data)) = event(&eio.next().await) else {
            continue;
        };
        if name == "presence:event" && data["type"] != "update" {
            let s = |k: &str| data[k].as_str().unwrap_or_default().to_owned();
            return (s("type"), s("userId"), s("connId"));
        }
    }
}

#[tokio::test]
async fn socketio_sees_the_new_connection_join_and_the_old_one_stay_listed() {
    let server = spawn(grace(LONG)).await;
    let (mut watcher, _) = sio_join(&server, "hub", "w").await;
    let (alice, old) = sio_join(&server, "hub", "alice").await;
    assert_eq!(
        next_sio_presence(&mut watcher).await,
        ("join".into(), "alice".into(), old.clone())
    );
    alice.ws.close().await;
    let (_alice, new) = sio_join(&server, "hub", "alice").await;
    // The new connection joins; the old one has not left (it lingers).
    assert_eq!(
        next_sio_presence(&mut watcher).await,
        ("join".into(), "alice".into(), new.clone())
    );
    until_lingering(&server, 1).await;
    // Until the grace ends, both connections are listed (the old one as a lingering member).
    let (_late, _, ack) = sio_join_ack(&server, "hub", "late").await;
    let mut listed: Vec<&str> = ack["snapshot"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["userId"] == "alice")
        .filter_map(|m| m["connId"].as_str())
        .collect();
    listed.sort_unstable();
    let mut both = vec![old.as_str(), new.as_str()];
    both.sort_unstable();
    assert_eq!(listed, both, "{ack}");
    assert_eq!(next_sio_presence(&mut watcher).await.1, "late");
    server.stop().await;
}

#[tokio::test]
async fn socketio_hears_the_old_connection_leave_when_the_grace_ends() {
    let server = spawn(grace(SHORT)).await;
    let (mut watcher, _) = sio_join(&server, "hub2", "w").await;
    let (alice, old) = sio_join(&server, "hub2", "alice").await;
    assert_eq!(
        next_sio_presence(&mut watcher).await,
        ("join".into(), "alice".into(), old.clone())
    );
    alice.ws.close().await;
    assert_eq!(
        next_sio_presence(&mut watcher).await,
        ("leave".into(), "alice".into(), old)
    );
    server.stop().await;
}
