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
