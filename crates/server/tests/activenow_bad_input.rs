//! Bad input on the ActiveNow sockets: a clear error, the connection kept where the spec says
//! so, and never a panic or lost state.

mod common;

use common::{settings, spawn, Ended};
use futures_util::StreamExt;
use serde_json::json;

#[tokio::test]
async fn malformed_and_unknown_messages_get_error_frames_and_keep_the_socket() {
    let server = spawn(settings()).await;
    let mut c = server.ws("/v1/ws?room=bad&socket_session_id=b").await;
    c.expect_type("hello").await;
    c.expect_type("ACTIVITY_JOIN_PRESENCE").await;
    for (input, code) in [
        ("not json", "bad_json"),
        ("[1,2]", "bad_json"),
        ("{\"type\":5}", "bad_json"),
        ("{\"type\":\"dance\"}", "unknown_type"),
        ("{\"no\":\"type\"}", "unknown_type"),
        (
            "{\"type\":\"updateSid\",\"session_id\":\"\"}",
            "bad_message",
        ),
    ] {
        c.send_text(input).await;
        let err = c.expect_type("error").await;
        assert_eq!(err["code"], code, "for {input}: {err}");
        assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    c.stream
        .send(tokio_tungstenite::tungstenite::Message::binary(vec![
            1u8, 2, 3,
        ]))
        .await
        .unwrap();
    assert_eq!(c.expect_type("error").await["code"], "binary_not_supported");
    // Still a member, still served.
    c.send_json(json!({"type": "hb"})).await;
    let (_, rooms) = server.get("/v1/activity/rooms").await;
    assert_eq!(rooms["room_count"]["bad"], 1);
    server.stop().await;
}

use futures_util::SinkExt;

#[tokio::test]
async fn oversized_frame_closes_with_1009() {
    let mut s = settings();
    s.max_frame_bytes = 1024;
    let server = spawn(s).await;
    let mut c = server.ws("/v1/ws?room=big").await;
    c.expect_type("hello").await;
    let huge = format!("{{\"type\":\"hb\",\"pad\":\"{}\"}}", "x".repeat(4096));
    c.send_text(&huge).await;
    assert_eq!(c.ended().await, Ended::Closed(Some(1009)));
    // The connection's presence is gone with it.
    let (_, rooms) = server.get("/v1/activity/rooms").await;
    assert_eq!(rooms["room_count"]["big"], serde_json::Value::Null);
    server.stop().await;
}

#[tokio::test]
async fn bad_room_names_and_session_ids_are_refused_before_the_upgrade() {
    let server = spawn(settings()).await;
    let long = "a".repeat(257);
    for path in [
        "/v1/ws".to_owned(),
        "/v1/ws?room=".to_owned(),
        format!("/v1/ws?room={long}"),
        "/v1/ws?room=a%0Ab".to_owned(),
        "/v1/ws?room=ok&socket_session_id=".to_owned(),
        format!("/v1/ws?room=ok&socket_session_id={long}"),
        "/web?socket_session_id=a%00b".to_owned(),
    ] {
        assert_eq!(server.try_ws(&path, &[]).await.err(), Some(400), "{path}");
    }
    // URL paths and CJK titles are room names.
    let mut c = server
        .ws("/v1/ws?room=%2Fblog%2F2024%2F%E5%91%A8%E6%8A%A5")
        .await;
    c.expect_type("hello").await;
    let (_, rooms) = server.get("/v1/activity/rooms").await;
    assert_eq!(rooms["rooms"], json!(["/blog/2024/周报"]));
    server.stop().await;
}

#[tokio::test]
async fn origins_outside_the_allowlist_get_403_on_every_socket() {
    let mut s = settings();
    s.allowed_origins = "https://app.example, https://www.app.example".into();
    let server = spawn(s).await;
    for path in ["/v1/ws?room=o", "/v1/ws/web", "/web"] {
        assert_eq!(
            server
                .try_ws(path, &[("origin", "https://evil.example")])
                .await
                .err(),
            Some(403)
        );
        assert_eq!(
            server.try_ws(path, &[]).await.err(),
            Some(403),
            "a missing Origin too"
        );
        assert!(server
            .try_ws(path, &[("origin", "https://app.example")])
            .await
            .is_ok());
    }
    server.stop().await;

    let mut s = settings();
    s.allowed_origins = "*".into();
    let server = spawn(s).await;
    assert!(server
        .try_ws("/v1/ws?room=o", &[("origin", "https://any.example")])
        .await
        .is_ok());
    server.stop().await;
}

#[tokio::test]
async fn a_flood_is_rate_limited_with_one_error_and_the_socket_kept() {
    let mut s = settings();
    s.max_messages_per_second = 5;
    let server = spawn(s).await;
    let mut c = server.ws("/v1/ws?room=flood&socket_session_id=f").await;
    c.expect_type("hello").await;
    for _ in 0..50 {
        c.send_json(json!({"type": "hb"})).await;
    }
    let err = c.until_type("error").await;
    assert_eq!(err["code"], "rate_limited");
    // Dropped messages are not answered one by one: an invalid message now (still limited)
    // gets no second error; the socket stays open and presence stays.
    let (_, rooms) = server.get("/v1/activity/rooms").await;
    assert_eq!(rooms["room_count"]["flood"], 1);
    let (_, metrics) = server.get_text("/metrics").await;
    assert!(
        metrics.contains("activenow_rate_limited_total"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn room_limit_refuses_a_new_identity_but_not_a_new_tab() {
    let mut s = settings();
    s.max_room_users = 1;
    let server = spawn(s).await;
    let mut a = server.ws("/v1/ws?room=tiny&socket_session_id=a").await;
    a.expect_type("hello").await;
    let mut b = server.ws("/v1/ws?room=tiny&socket_session_id=b").await;
    assert_eq!(b.expect_type("error").await["code"], "room_full");
    assert_eq!(b.ended().await, Ended::Closed(Some(1008)));
    let mut a2 = server.ws("/v1/ws?room=tiny&socket_session_id=a").await;
    assert_eq!(a2.expect_type("hello").await["count"], 1);
    server.stop().await;
}

#[tokio::test]
async fn a_slow_consumer_is_closed_and_its_queue_freed() {
    let mut s = settings();
    s.send_queue_capacity = 4;
    s.slow_consumer_timeout_ms = 200;
    s.max_frame_bytes = 200_000;
    s.http_max_body_bytes = 200_000;
    let server = spawn(s).await;
    let mut slow = server.ws("/v1/ws?room=slow&socket_session_id=slow").await;
    slow.expect_type("hello").await;
    let mut fast = server.ws("/v1/ws?room=slow&socket_session_id=fast").await;
    fast.expect_type("hello").await;
    // `fast` reads everything it is sent.
    let fast = tokio::spawn(async move { while let Some(Ok(_)) = fast.stream.next().await {} });
    // `slow` stops reading. Large updates fill the kernel buffers, then its queue: it is
    // closed once its queue stayed full (1008) or its write made no progress (TCP drop) for
    // SLOW_CONSUMER_TIMEOUT_MS.
    let name = "n".repeat(100_000);
    let body = json!({"room_name": "slow", "display_name": name}).to_string();
    let mut closed = false;
    for _ in 0..2000 {
        let (status, _) = server
            .post(
                "/v1/activity/presence/update",
                &[("x-socket-session-id", "fast")],
                &body,
            )
            .await;
        assert_eq!(status, 200);
        let (_, m) = server.get_text("/metrics").await;
        let counted = |name: &str| m.lines().any(|l| l.starts_with(name) && !l.ends_with(" 0"));
        if counted("activenow_slow_consumers_total") || counted("activenow_write_timeouts_total") {
            closed = true;
            break;
        }
    }
    assert!(closed, "the slow consumer was never dropped");
    assert!(matches!(
        slow.ended().await,
        Ended::Closed(Some(1008)) | Ended::Dropped
    ));
    let (_, list) = server.get("/v1/activity/presence?room_name=slow").await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["identity"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["fast"], "the dropped consumer left the room");
    fast.abort();
    server.stop().await;
}
