//! The Pusher protocol over real sockets (the npm clients are in js-tests/pusher): the
//! handshake, refusals with Pusher's close codes, signed presence subscriptions with one
//! member per user across tabs, and the engine seeing a Pusher presence channel as a room.

mod common;

use activenow::protocol::pusher::auth::sign;
use common::{settings, spawn, Client, Ended};
use serde_json::{json, Value};

const KEY: &str = "key1";
const SECRET: &str = "secret1";

fn pusher_settings() -> activenow::Settings {
    activenow::Settings {
        pusher_app_id: "app1".into(),
        pusher_app_key: KEY.into(),
        pusher_app_secret: SECRET.into(),
        ..settings()
    }
}

/// The socket id from connection_established.
async fn hello(c: &mut Client) -> String {
    let v = c
        .until(|v| v["event"] == "pusher:connection_established")
        .await;
    let data: Value = serde_json::from_str(v["data"].as_str().expect("data is a string")).unwrap();
    assert_eq!(data["activity_timeout"], 120);
    data["socket_id"].as_str().unwrap().to_owned()
}

async fn join_presence(c: &mut Client, socket_id: &str, channel: &str, user: &str) -> Value {
    let channel_data = json!({"user_id": user, "user_info": {"name": user}}).to_string();
    let sig = sign(SECRET, &format!("{socket_id}:{channel}:{channel_data}"));
    c.send_json(json!({"event": "pusher:subscribe", "data": {
        "channel": channel, "auth": format!("{KEY}:{sig}"), "channel_data": channel_data}}))
        .await;
    let v = c
        .until(|v| v["event"] == "pusher_internal:subscription_succeeded")
        .await;
    serde_json::from_str(v["data"].as_str().expect("data is a string")).unwrap()
}

#[tokio::test]
async fn presence_counts_users_not_tabs() {
    let server = spawn(pusher_settings()).await;
    let mut alice = server
        .ws("/app/key1?protocol=7&client=js&version=8.6.0")
        .await;
    let sid = hello(&mut alice).await;
    let first = join_presence(&mut alice, &sid, "presence-r", "alice").await;
    assert_eq!(
        first,
        json!({"presence":{"ids":["alice"],"hash":{"alice":{"name":"alice"}},"count":1}})
    );

    let mut bob1 = server.ws("/app/key1?protocol=7").await;
    let sid = hello(&mut bob1).await;
    let two = join_presence(&mut bob1, &sid, "presence-r", "bob").await;
    assert_eq!(two["presence"]["count"], 2);
    let added = alice
        .until(|v| v["event"] == "pusher_internal:member_added")
        .await;
    let data: Value = serde_json::from_str(added["data"].as_str().unwrap()).unwrap();
    assert_eq!(
        data,
        json!({"user_id": "bob", "user_info": {"name": "bob"}})
    );

    let mut bob2 = server.ws("/app/key1?protocol=7").await;
    let sid = hello(&mut bob2).await;
    assert_eq!(
        join_presence(&mut bob2, &sid, "presence-r", "bob").await["presence"]["count"],
        2
    );
    // The engine sees the channel as a room with two identities.
    let counts = server.state().engine.room_counts().await.unwrap();
    let room = counts
        .iter()
        .find(|(r, _)| r.as_str() == "pusher:app1:presence-r")
        .expect("the channel's room");
    assert_eq!(room.1, 2);

    bob2.close().await;
    bob1.close().await;
    // The first frame alice gets after bob's tabs close is the one member_removed; a
    // member_added for bob's second tab would have come before it.
    let next = alice.next_json().await;
    assert_eq!(next["event"], "pusher_internal:member_removed", "{next}");
    assert_eq!(next["data"], json!({"user_id": "bob"}).to_string());
    server.stop().await;
}

#[tokio::test]
async fn refusals_use_pushers_close_codes() {
    let server = spawn(pusher_settings()).await;
    let mut unknown = server.ws("/app/nope?protocol=7").await;
    let err = unknown.next_json().await;
    assert_eq!(err["event"], "pusher:error");
    assert_eq!(err["data"]["code"], 4001);
    assert_eq!(unknown.ended().await, Ended::Closed(Some(4001)));

    let mut old = server.ws("/app/key1?protocol=5").await;
    assert_eq!(old.ended().await, Ended::Closed(Some(4007)));

    let mut c = server.ws("/app/key1?protocol=7").await;
    let sid = hello(&mut c).await;
    c.send_json(json!({"event": "pusher:subscribe", "data": {
        "channel": "private-x", "auth": format!("{KEY}:{}", sign("wrong", &format!("{sid}:private-x")))}}))
        .await;
    let refused = c.next_json().await;
    assert_eq!(refused["event"], "pusher:subscription_error");
    assert_eq!(refused["data"]["status"], 401);
    server.stop().await;

    // No app configured: every key is unknown.
    let server = spawn(settings()).await;
    let mut c = server.ws("/app/key1?protocol=7").await;
    assert_eq!(c.next_json().await["data"]["code"], 4001);
    server.stop().await;
}
