//! Seed 0 room and visitor sockets, through real WebSocket clients on loopback.

mod common;

use common::{settings, spawn, Ended};
use serde_json::json;

#[tokio::test]
async fn hello_then_sync_join_and_leave_as_the_seed_lists() {
    let server = spawn(settings()).await;
    let mut a = server.ws("/v1/ws?room=demo&socket_session_id=alice").await;
    let hello = a.expect_type("hello").await;
    assert_eq!(
        hello,
        json!({"type": "hello", "sid": "alice", "ttl": 30, "count": 1})
    );
    let join = a.expect_type("ACTIVITY_JOIN_PRESENCE").await;
    assert_eq!(join["data"]["identity"], "alice");
    assert_eq!(join["data"]["roomName"], "demo");
    assert!(join["data"]["joinedAt"].as_u64().unwrap() > 1_600_000_000_000);

    let mut b = server.ws("/v1/ws?room=demo&socket_session_id=bob").await;
    assert_eq!(b.expect_type("hello").await["count"], 2);
    let join = a.expect_type("ACTIVITY_JOIN_PRESENCE").await;
    assert_eq!(join["data"]["identity"], "bob");
    assert_eq!(
        a.expect_type("sync").await,
        json!({"type": "sync", "count": 2})
    );

    b.close().await;
    let leave = a.expect_type("ACTIVITY_LEAVE_PRESENCE").await;
    assert_eq!(
        leave,
        json!({"type": "ACTIVITY_LEAVE_PRESENCE", "data": {"identity": "bob", "roomName": "demo"}})
    );
    assert_eq!(a.expect_type("sync").await["count"], 1);
    a.close().await;
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_sockets_with_1012() {
    let server = spawn(settings()).await;
    let mut a = server.ws("/v1/ws?room=bye").await;
    a.expect_type("hello").await;
    let mut v = server.ws("/web").await;
    v.expect_type("GATEWAY_CONNECT").await;
    let engine = server.state().engine.clone();
    server.stop().await;
    assert_eq!(a.ended().await, Ended::Closed(Some(1012)));
    assert_eq!(v.ended().await, Ended::Closed(Some(1012)));
    assert_eq!(engine.room_counts().await.unwrap(), vec![]);
}

#[tokio::test]
async fn tabs_of_one_session_count_once() {
    let server = spawn(settings()).await;
    let mut watcher = server.ws("/v1/ws?room=tabs&socket_session_id=w").await;
    watcher.expect_type("hello").await;
    watcher.expect_type("ACTIVITY_JOIN_PRESENCE").await;

    let mut tab1 = server.ws("/v1/ws?room=tabs&socket_session_id=s1").await;
    assert_eq!(tab1.expect_type("hello").await["count"], 2);
    assert_eq!(
        watcher.expect_type("ACTIVITY_JOIN_PRESENCE").await["data"]["identity"],
        "s1"
    );
    assert_eq!(watcher.expect_type("sync").await["count"], 2);

    let mut tab2 = server.ws("/v1/ws?room=tabs&socket_session_id=s1").await;
    assert_eq!(
        tab2.expect_type("hello").await["count"],
        2,
        "a second tab is not a new member"
    );
    tab2.close().await;
    tab1.close().await;
    // The first thing the watcher hears after both tabs is one leave: no join for tab 2,
    // no leave for tab 2, no sync in between (the count never changed).
    let leave = watcher.next_json().await;
    assert_eq!(leave["type"], "ACTIVITY_LEAVE_PRESENCE", "{leave}");
    assert_eq!(leave["data"]["identity"], "s1");
    assert_eq!(watcher.expect_type("sync").await["count"], 1);
    server.stop().await;
}

#[tokio::test]
async fn header_session_id_wins_and_a_missing_one_is_minted() {
    let server = spawn(settings()).await;
    let mut a = server
        .try_ws(
            "/v1/ws?room=ids&socket_session_id=query",
            &[("x-socket-session-id", "header")],
        )
        .await
        .unwrap();
    assert_eq!(a.expect_type("hello").await["sid"], "header");
    let mut b = server.ws("/v1/ws?room=ids").await;
    let sid = b.expect_type("hello").await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(sid.len(), 36, "a UUID: {sid}");
    assert_ne!(sid, "header");
    server.stop().await;
}

#[tokio::test]
async fn update_sid_rekeys_in_both_spellings() {
    let server = spawn(settings()).await;
    let mut watcher = server.ws("/v1/ws?room=rekey&socket_session_id=w").await;
    watcher.expect_type("hello").await;
    let mut c = server.ws("/v1/ws?room=rekey&socket_session_id=anon").await;
    c.expect_type("hello").await;
    watcher
        .until(|v| v["type"] == "ACTIVITY_JOIN_PRESENCE" && v["data"]["identity"] == "anon")
        .await;

    c.send_json(json!({"type": "updateSid", "session_id": "user-42"}))
        .await;
    let leave = watcher.until_type("ACTIVITY_LEAVE_PRESENCE").await;
    assert_eq!(leave["data"]["identity"], "anon");
    let join = watcher.until_type("ACTIVITY_JOIN_PRESENCE").await;
    assert_eq!(join["data"]["identity"], "user-42");

    c.send_json(json!({"type": "updatesid", "sessionId": "user-43"}))
        .await;
    assert_eq!(
        watcher.until_type("ACTIVITY_LEAVE_PRESENCE").await["data"]["identity"],
        "user-42"
    );
    assert_eq!(
        watcher.until_type("ACTIVITY_JOIN_PRESENCE").await["data"]["identity"],
        "user-43"
    );
    let (_, list) = server.get("/v1/activity/presence?room_name=rekey").await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["identity"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["user-43", "w"]);

    // Re-keying onto an identity already present merges the two: the count drops to 1.
    c.send_json(json!({"type": "updateSid", "session_id": "w"}))
        .await;
    assert_eq!(watcher.until_type("sync").await["count"], 1);
    c.send_json(json!({"type": "updateSid"})).await;
    assert_eq!(c.until_type("error").await["code"], "bad_message");
    server.stop().await;
}

#[tokio::test]
async fn silent_session_expires_with_leave_and_sync_and_a_heartbeat_brings_it_back() {
    let mut s = settings();
    s.presence_ttl_ms = 1500;
    s.presence_reaper_interval_ms = 50;
    let server = spawn(s).await;
    let mut watcher = server.ws("/v1/ws?room=ttl&socket_session_id=w").await;
    assert_eq!(watcher.expect_type("hello").await["ttl"], 1);
    // The watcher heartbeats like a client would (every ttl/5); the other one stays silent.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<serde_json::Value>(64);
    let watch = tokio::spawn(async move {
        let mut hb = tokio::time::interval(std::time::Duration::from_millis(300));
        loop {
            tokio::select! {
                _ = hb.tick() => watcher.send_json(json!({"type": "hb"})).await,
                v = watcher.next_json() => { if tx.send(v).await.is_err() { return; } }
            }
        }
    });
    let mut silent = server.ws("/v1/ws?room=ttl&socket_session_id=quiet").await;
    silent.expect_type("hello").await;
    let mut next_of = async |ty: &str| loop {
        let v = tokio::time::timeout(common::WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        if v["type"] == ty {
            return v;
        }
    };
    assert_eq!(
        next_of("ACTIVITY_JOIN_PRESENCE").await["data"]["identity"],
        "w"
    );
    assert_eq!(
        next_of("ACTIVITY_JOIN_PRESENCE").await["data"]["identity"],
        "quiet"
    );
    assert_eq!(next_of("sync").await["count"], 2);
    assert_eq!(
        next_of("ACTIVITY_LEAVE_PRESENCE").await["data"]["identity"],
        "quiet"
    );
    assert_eq!(next_of("sync").await["count"], 1);
    // The socket stays open; its next heartbeat joins again.
    silent.send_json(json!({"type": "hb"})).await;
    assert_eq!(
        next_of("ACTIVITY_JOIN_PRESENCE").await["data"]["identity"],
        "quiet"
    );
    assert_eq!(next_of("sync").await["count"], 2);
    watch.abort();
    server.stop().await;
}
