//! The visitors socket and seed 0's HTTP API, through real clients.

mod common;

use common::{settings, spawn};
use serde_json::json;

#[tokio::test]
async fn visitors_are_counted_once_per_session_on_both_paths() {
    let server = spawn(settings()).await;
    let mut v1 = server.ws("/web?socket_session_id=v1").await;
    assert_eq!(
        v1.expect_type("GATEWAY_CONNECT").await,
        json!({"type": "GATEWAY_CONNECT", "data": "WebSocket 已连接"})
    );
    let online = v1.expect_type("VISITOR_ONLINE").await;
    assert_eq!(online["data"]["online"], 1);
    assert!(online["data"]["timestamp"].as_u64().unwrap() > 1_600_000_000_000);

    let mut v2 = server.ws("/v1/ws/web?socket_session_id=v2").await;
    v2.expect_type("GATEWAY_CONNECT").await;
    assert_eq!(v2.expect_type("VISITOR_ONLINE").await["data"]["online"], 2);
    assert_eq!(v1.expect_type("VISITOR_ONLINE").await["data"]["online"], 2);

    // A second tab of v1 learns the count; nobody else hears of it.
    let mut v1b = server
        .try_ws("/web", &[("x-socket-session-id", "v1")])
        .await
        .unwrap();
    v1b.expect_type("GATEWAY_CONNECT").await;
    assert_eq!(v1b.expect_type("VISITOR_ONLINE").await["data"]["online"], 2);
    v1b.close().await;

    v2.close().await;
    let off = v1.next_json().await;
    assert_eq!(
        off["type"], "VISITOR_OFFLINE",
        "no event for v1's tab: {off}"
    );
    assert_eq!(off["data"]["online"], 1);
    assert_eq!(off["data"]["sessionId"], "v2");

    let (status, today) = server.get("/v1/metrics/online/today").await;
    assert_eq!(status, 200);
    assert_eq!(today["max"], 2);
    assert_eq!(today["total"], 2);
    assert_eq!(today["backend"], "memory");
    assert_eq!(today["date"].as_str().unwrap().len(), 10);
    server.stop().await;
}

#[tokio::test]
async fn presence_update_over_http_broadcasts_and_is_listed() {
    let server = spawn(settings()).await;
    let mut c = server.ws("/v1/ws?room=demo&socket_session_id=sid1").await;
    c.expect_type("hello").await;
    c.expect_type("ACTIVITY_JOIN_PRESENCE").await;

    let path = "/v1/activity/presence/update";
    let hdr = [("x-socket-session-id", "sid1")];
    let (status, body) = server
        .post(
            path,
            &hdr,
            r#"{"room_name":"demo","position":1,"display_name":"Ann"}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let update = c.expect_type("ACTIVITY_UPDATE_PRESENCE").await;
    assert_eq!(update["data"]["identity"], "sid1");
    assert_eq!(update["data"]["roomName"], "demo");
    assert_eq!(update["data"]["displayName"], "Ann");
    assert_eq!(update["data"]["position"], 1);
    assert!(update["data"]["updatedAt"].as_u64().unwrap() > 1_600_000_000_000);

    let (status, list) = server.get("/v1/activity/presence?room_name=demo").await;
    assert_eq!(status, 200);
    let entry = &list[0];
    assert_eq!(entry["identity"], "sid1");
    assert_eq!(entry["display_name"], "Ann");
    assert_eq!(entry["position"], 1);
    assert!(entry["joined_at"].as_u64().unwrap() <= entry["updated_at"].as_u64().unwrap());

    // Refusals.
    assert_eq!(
        server.post(path, &[], r#"{"room_name":"demo"}"#).await.0,
        400,
        "no session header"
    );
    assert_eq!(server.post(path, &hdr, "{not json").await.0, 400);
    assert_eq!(
        server.post(path, &hdr, r#"{"position":1}"#).await.0,
        400,
        "no room_name"
    );
    assert_eq!(server.post(path, &hdr, r#"{"room_name":""}"#).await.0, 400);
    assert_eq!(
        server
            .post(path, &hdr, r#"{"room_name":"demo","position":"x"}"#)
            .await
            .0,
        400
    );
    let (status, body) = server
        .post(
            path,
            &[("x-socket-session-id", "ghost")],
            r#"{"room_name":"demo"}"#,
        )
        .await;
    assert_eq!(status, 404, "an HTTP caller cannot invent members");
    assert_eq!(body["error"], "not_present");
    assert_eq!(
        server
            .post(path, &hdr, r#"{"room_name":"elsewhere"}"#)
            .await
            .0,
        404
    );
    assert_eq!(server.get("/v1/activity/presence").await.0, 400);
    assert_eq!(
        server.get("/v1/activity/presence?room_name=nobody").await.1,
        json!([])
    );
    server.stop().await;
}

#[tokio::test]
async fn room_listings_are_busiest_first_and_capped() {
    let server = spawn(settings()).await;
    let mut sockets = Vec::new();
    for (room, n) in [("a", 1), ("b", 3), ("c", 2)] {
        for i in 0..n {
            let mut c = server
                .ws(&format!("/v1/ws?room={room}&socket_session_id={room}{i}"))
                .await;
            c.expect_type("hello").await;
            sockets.push(c);
        }
    }
    let mut v = server.ws("/web").await; // the visitors room is not a listed room
    v.expect_type("GATEWAY_CONNECT").await;
    let (_, active) = server.get("/v1/rooms/active").await;
    assert_eq!(
        active,
        json!([
            {"room": "b", "count": 3, "path": "b", "title": "b"},
            {"room": "c", "count": 2, "path": "c", "title": "c"},
            {"room": "a", "count": 1, "path": "a", "title": "a"}
        ])
    );
    assert_eq!(
        server
            .get("/v1/rooms/active?limit=1")
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        server
            .get("/v1/rooms/active?limit=100000")
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(server.get("/v1/rooms/active?limit=-1").await.0, 400);
    let (_, rooms) = server.get("/v1/activity/rooms").await;
    assert_eq!(
        rooms,
        json!({"rooms": ["b", "c", "a"], "room_count": {"a": 1, "b": 3, "c": 2}})
    );
    server.stop().await;
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let server = spawn(settings()).await;
    for path in ["/health", "/healthz"] {
        assert_eq!(server.get(path).await, (200, json!({"status": "ok"})));
    }
    let (status, ready) = server.get("/readyz").await;
    assert_eq!((status, &ready["backend"]), (200, &json!("memory")));
    let mut c = server.ws("/v1/ws?room=m").await;
    c.expect_type("hello").await;
    c.send_json(json!({"type": "hb"})).await;
    c.send_text("oops").await;
    c.until_type("error").await;
    let (status, text) = server.get_text("/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "activenow_connections 1",
        "activenow_rooms 1",
        "activenow_joins_total 1",
        "activenow_messages_in_total 2",
        "activenow_errors_total",
        "activenow_backend_latency_microseconds_total",
        "activenow_slow_consumers_total 0",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }
    server.stop().await;
}
