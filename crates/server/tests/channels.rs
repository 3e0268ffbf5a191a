//! Channels (seed 2, SPEC §6) messages, limits, presence and keep-alive through real
//! WebSocket and HTTP clients on loopback, with tokens minted by the server's own code.

mod channels_support;
mod common;

use activenow::protocol::channels::codec::room_of;
use channels_support::*;
use common::{spawn, Ended, WAIT};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn subscribe_publish_unsubscribe_as_the_spec_lists() {
    let server = spawn(channel_settings()).await;
    let mut a = connect(&server, "alice").await;
    let mut b = connect(&server, "bob").await;
    assert_eq!(
        subscribe(&mut a, "lobby").await,
        json!({"type":"subscribed","channel":"lobby","data":{"status":"success","room":"lobby","event":"signal:all"}})
    );
    assert_eq!(subscribe(&mut b, "lobby").await["type"], "subscribed");

    a.send_json(
        json!({"type":"publish","channel":"lobby","event":"signal:all",
                       "data":{"type":"discover","from":"forged","userType":"desktop"}}),
    )
    .await;
    let msg = b.expect_type("message").await;
    let ts = msg["timestamp"].as_u64().unwrap();
    assert!(ts > 1_600_000_000_000, "timestamp in ms: {ts}");
    assert_eq!(
        msg,
        json!({"type":"message","channel":"lobby","event":"signal:all",
               "data":{"type":"discover","from":"alice","userType":"desktop"},"timestamp":ts})
    );
    // The publisher does not get its own message: its next frame is the next reply.
    assert_eq!(subscribe(&mut a, "second").await["type"], "subscribed");

    b.send_json(json!({"type":"unsubscribe","channel":"lobby"}))
        .await;
    assert_eq!(
        b.next_json().await,
        json!({"type":"unsubscribed","channel":"lobby","data":{"status":"success","room":"lobby","event":"signal:all"}})
    );
    a.send_json(json!({"type":"publish","channel":"lobby","event":"x","data":{}}))
        .await;
    // Nothing reaches bob any more: his next frame answers his next message.
    b.send_json(json!({"type":"publish","channel":"lobby","data":{}}))
        .await;
    assert_eq!(error_code(&mut b).await, "NOT_SUBSCRIBED");
    a.close().await;
    b.close().await;
    server.stop().await;
}

#[tokio::test]
async fn the_51st_subscriber_gets_room_full_by_default() {
    let server = spawn(channel_settings()).await;
    let mut clients = Vec::new();
    for i in 0..50 {
        let mut c = connect(&server, &format!("user{i}")).await;
        assert_eq!(subscribe(&mut c, "full room").await["type"], "subscribed");
        clients.push(c);
    }
    let mut late = connect(&server, "user50").await;
    late.send_json(json!({"type":"subscribe","channel":"full room"}))
        .await;
    assert_eq!(error_code(&mut late).await, "ROOM_FULL");
    // A second socket of a present user is not a new subscriber.
    let mut tab = connect(&server, "user0").await;
    assert_eq!(subscribe(&mut tab, "full room").await["type"], "subscribed");
    // When one leaves, the late one gets in.
    clients.pop().unwrap().close().await;
    assert_eq!(
        subscribe(&mut late, "full room").await["type"],
        "subscribed"
    );
    assert_eq!(channel_count(&server, "full room").await, 50);
    server.stop().await;
}

#[tokio::test]
async fn max_room_users_and_channel_max_users_set_the_limit() {
    let mut s = channel_settings();
    s.max_room_users = 2;
    let server = spawn(s).await;
    let mut a = connect(&server, "a").await;
    let mut b = connect(&server, "b").await;
    let mut c = connect(&server, "c").await;
    assert_eq!(subscribe(&mut a, "ab").await["type"], "subscribed");
    assert_eq!(subscribe(&mut b, "ab").await["type"], "subscribed");
    c.send_json(json!({"type":"subscribe","channel":"ab"}))
        .await;
    assert_eq!(error_code(&mut c).await, "ROOM_FULL");
    server.stop().await;

    let mut s = channel_settings();
    s.max_room_users = 2;
    s.channel_max_users = "0".parse().unwrap();
    let server = spawn(s).await;
    let mut held = Vec::new();
    for user in ["a", "b", "c"] {
        let mut x = connect(&server, user).await;
        assert_eq!(subscribe(&mut x, "ab").await["type"], "subscribed");
        held.push(x);
    }
    server.stop().await;
}

#[tokio::test]
async fn channel_names_follow_the_seed_rule() {
    let server = spawn(channel_settings()).await;
    let mut c = connect(&server, "alice").await;
    for ok in ["中文房间", "Room 42", "a_b-c", "123456789012"] {
        assert_eq!(subscribe(&mut c, ok).await["type"], "subscribed", "{ok}");
    }
    for bad in [
        "a",
        "1234567890123",
        "bad!name",
        "a/b",
        "emoji😀",
        "tab\tx",
        "",
    ] {
        c.send_json(json!({"type":"subscribe","channel":bad})).await;
        assert_eq!(error_code(&mut c).await, "INVALID_CHANNEL", "{bad:?}");
        c.send_json(json!({"type":"publish","channel":bad,"data":{}}))
            .await;
        assert_eq!(error_code(&mut c).await, "INVALID_CHANNEL", "{bad:?}");
    }
    c.close().await;
    server.stop().await;
}

#[tokio::test]
async fn bad_messages_get_errors_and_keep_the_socket() {
    let server = spawn(channel_settings()).await;
    let mut c = connect(&server, "alice").await;
    for bad in [
        "not json",
        "[1,2]",
        r#"{"type":"dance","channel":"ab"}"#,
        r#"{"channel":"ab"}"#,
        r#"{"type":"subscribe"}"#,
        r#"{"type":"subscribe","channel":5}"#,
    ] {
        c.send_text(bad).await;
        assert_eq!(error_code(&mut c).await, "BAD_MESSAGE", "{bad}");
    }
    c.stream
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(error_code(&mut c).await, "BAD_MESSAGE");
    c.send_json(json!({"type":"publish","channel":"ab","data":{}}))
        .await;
    assert_eq!(error_code(&mut c).await, "NOT_SUBSCRIBED");
    c.send_json(json!({"type":"unsubscribe","channel":"ab"}))
        .await;
    assert_eq!(error_code(&mut c).await, "NOT_SUBSCRIBED");
    assert_eq!(subscribe(&mut c, "ab").await["type"], "subscribed");
    for data in [json!(null), json!([1]), json!("text")] {
        c.send_json(json!({"type":"publish","channel":"ab","data":data}))
            .await;
        assert_eq!(error_code(&mut c).await, "BAD_MESSAGE", "{data}");
    }
    c.send_json(json!({"type":"publish","channel":"ab"})).await;
    assert_eq!(error_code(&mut c).await, "BAD_MESSAGE");
    c.close().await;
    server.stop().await;
}

#[tokio::test]
async fn payload_limit_rate_limit_and_subscription_limit() {
    let mut s = channel_settings();
    s.channel_max_payload_bytes = 64;
    s.channel_publish_rate = 1;
    s.channel_max_subscriptions = 2;
    s.max_messages_per_second = 1000;
    let server = spawn(s).await;
    let mut a = connect(&server, "alice").await;
    let mut b = connect(&server, "bob").await;
    assert_eq!(subscribe(&mut a, "ab").await["type"], "subscribed");
    assert_eq!(subscribe(&mut b, "ab").await["type"], "subscribed");

    a.send_json(json!({"type":"publish","channel":"ab","data":{"blob":"x".repeat(100)}}))
        .await;
    assert_eq!(error_code(&mut a).await, "TOO_LARGE");
    a.send_json(json!({"type":"publish","channel":"ab","data":{"n":1}}))
        .await;
    assert_eq!(b.expect_type("message").await["data"]["n"], 1);

    // One publish per second with bursts of two: the burst is spent (the oversized
    // publish counted too), so a flood is refused at once.
    for n in 0..5 {
        a.send_json(json!({"type":"publish","channel":"ab","data":{"n":n}}))
            .await;
    }
    assert_eq!(a.until_type("error").await["error"]["code"], "RATE_LIMITED");

    assert_eq!(subscribe(&mut a, "cd").await["type"], "subscribed");
    a.send_json(json!({"type":"subscribe","channel":"ef"}))
        .await;
    assert_eq!(error_code(&mut a).await, "TOO_MANY_SUBSCRIPTIONS");
    // Subscribing again to a channel already held is not a new subscription.
    a.send_json(json!({"type":"subscribe","channel":"cd","event":"other"}))
        .await;
    assert_eq!(a.until_type("subscribed").await["data"]["event"], "other");
    a.close().await;
    b.close().await;
    server.stop().await;
}

#[tokio::test]
async fn subscriptions_are_presence_in_the_engine() {
    let server = spawn(channel_settings()).await;
    let mut a = connect(&server, "alice").await;
    let mut a2 = connect(&server, "alice").await;
    let mut b = connect(&server, "bob").await;
    for c in [&mut a, &mut a2, &mut b] {
        assert_eq!(subscribe(c, "presence").await["type"], "subscribed");
    }
    assert_eq!(
        channel_count(&server, "presence").await,
        2,
        "identities count once"
    );
    let engine = &server.state().engine;
    let mut ids: Vec<String> = engine
        .members(&room_of("presence"))
        .await
        .unwrap()
        .iter()
        .map(|m| m.identity.as_str().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids, ["alice", "bob"]);
    let (_, metrics) = server.get_text("/metrics").await;
    assert!(metrics.contains("activenow_connections 3"), "{metrics}");

    // Channel rooms are a namespace of their own: an unauthenticated room socket of the same
    // name is alone in its room, and the channel is not listed among the public rooms.
    let mut room = server
        .ws("/v1/ws?room=presence&socket_session_id=carol")
        .await;
    assert_eq!(room.expect_type("hello").await["count"], 1);
    let (_, rooms) = server.get("/v1/activity/rooms").await;
    assert_eq!(rooms["room_count"], json!({"presence": 1}));
    // A second tab of alice publishing reaches the first one (only the socket is excluded).
    a2.send_json(json!({"type":"publish","channel":"presence","data":{"hi":1}}))
        .await;
    assert_eq!(a.expect_type("message").await["data"]["from"], "alice");
    assert_eq!(b.expect_type("message").await["data"]["from"], "alice");

    b.close().await;
    a.close().await;
    a2.close().await;
    room.close().await;
    assert_eq!(channel_count(&server, "presence").await, 0);
    server.stop().await;
}

#[tokio::test]
async fn server_pings_and_closes_silent_sockets() {
    let mut s = channel_settings();
    s.channel_ping_interval = 1;
    s.channel_idle_timeout = 0;
    let server = spawn(s).await;
    let mut c = connect(&server, "alice").await;
    let ping = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(Ok(Message::Ping(_))) = c.stream.next().await {
                return;
            }
        }
    })
    .await;
    assert!(ping.is_ok(), "no ping within the wait");
    c.close().await;
    server.stop().await;

    let mut s = channel_settings();
    s.channel_ping_interval = 0;
    s.channel_idle_timeout = 1;
    let server = spawn(s).await;
    let mut c = connect(&server, "alice").await;
    assert_eq!(subscribe(&mut c, "ab").await["type"], "subscribed");
    assert_eq!(c.ended().await, Ended::Closed(Some(1001)));
    let (_, rooms) = server.get("/v1/activity/rooms").await;
    assert_eq!(rooms["rooms"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_channel_sockets_with_1012() {
    let server = spawn(channel_settings()).await;
    let mut c = connect(&server, "alice").await;
    assert_eq!(subscribe(&mut c, "ab").await["type"], "subscribed");
    let engine = server.state().engine.clone();
    server.stop().await;
    assert_eq!(c.ended().await, Ended::Closed(Some(1012)));
    assert_eq!(engine.room_counts().await.unwrap(), vec![]);
}
