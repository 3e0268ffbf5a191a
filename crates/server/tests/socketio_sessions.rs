//! Issue 12 on Engine.IO / Socket.IO: sessions that never send a Socket.IO CONNECT count
//! toward `MAX_CONNECTIONS` and `MAX_CONNECTIONS_PER_IP` and are closed after
//! `SOCKETIO_CONNECT_TIMEOUT_MS`; a burst of events reaches a Socket.IO watcher that reads,
//! and one that stops reading is closed as a slow consumer, its presence removed.

mod common;

use std::collections::HashSet;
use std::time::Instant;

use common::eio::{event, Eio, Polling, WEBSOCKET};
use common::raw::metric;
use common::{settings, spawn, TestServer, WAIT};

/// Waits until the session is closed by the server: a long poll on it returns the close
/// packet (or an error once the session is gone).
async fn until_closed(polling: &Polling, sid: &str) {
    let started = Instant::now();
    loop {
        let (status, body) = polling.get(sid).await;
        if status != 200 || body.contains('1') && !body.contains("40") {
            return;
        }
        assert!(started.elapsed() < WAIT, "session {sid} never closed");
    }
}

/// Retries an Engine.IO WebSocket handshake until it is admitted (a place is freed just
/// after its session closes).
async fn admitted(server: &TestServer) -> Eio {
    let started = Instant::now();
    loop {
        match Eio::open(server, WEBSOCKET).await {
            Ok(eio) => return eio,
            Err(status) => assert!(
                started.elapsed() < WAIT,
                "still refused ({status}) after the sessions timed out"
            ),
        }
    }
}

#[tokio::test]
async fn engine_io_sessions_count_toward_max_connections_until_their_connect_timeout() {
    let mut s = settings();
    s.max_connections = 3;
    s.socketio_connect_timeout_ms = 1500;
    let server = spawn(s).await;
    let polling = Polling::new(&server);
    let joined = polling.handshake().await.expect("first session");
    let idle = polling.handshake().await.expect("second session");
    // A Socket.IO CONNECT makes the first one an engine connection: counted once, so two
    // places are held and one is left.
    assert_eq!(polling.post(&joined, "40").await, 200);
    let (_, connect) = polling.get(&joined).await;
    assert!(connect.contains("40{"), "{connect}");
    let _member = server.ws("/v1/ws?room=r&socket_session_id=a").await;
    // Full: every kind of handshake is refused with 503.
    let (status, body) = polling.handshake().await.expect_err("over MAX_CONNECTIONS");
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("too_many_connections"))
    );
    assert_eq!(Eio::open(&server, WEBSOCKET).await.err(), Some(503));
    assert_eq!(
        server
            .try_ws("/v1/ws?room=r&socket_session_id=b", &[])
            .await
            .err(),
        Some(503)
    );
    // The session that never connected is closed by the connect timeout; its place then
    // takes a WebSocket client.
    until_closed(&polling, &idle).await;
    let mut eio = admitted(&server).await;
    eio.connect().await;
    eio.join("r", "late").await;
    server.stop().await;
}

#[tokio::test]
async fn polling_sessions_count_per_ip_and_an_upgrade_gives_its_place_back() {
    let mut s = settings();
    s.max_connections_per_ip = 4;
    s.socketio_connect_timeout_ms = 1500;
    let server = spawn(s).await;
    // One keep-alive HTTP connection (1 place) and two polling sessions (2 places).
    let polling = Polling::new(&server);
    let upgraded = polling.handshake().await.expect("first session");
    let _second = polling.handshake().await.expect("second session");
    // The upgrade's WebSocket takes the fourth place; the session gives its own back.
    let _ws = server.ws(&format!("{WEBSOCKET}&sid={upgraded}")).await;
    let third = polling
        .handshake()
        .await
        .expect("the upgrade freed a place");
    let (status, body) = polling.handshake().await.expect_err("over the per-IP cap");
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("too_many_connections"))
    );
    // Sessions that never connect time out and give their places back.
    until_closed(&polling, &third).await;
    let mut eio = admitted(&server).await;
    eio.connect().await;
    server.stop().await;
}

/// One test function, the two cases in turn: the WebSocket write timeout is process-wide
/// (vendor/engineioxide/PATCHES.md) and the second case shortens it.
#[tokio::test]
async fn socketio_slow_consumers_are_time_based() {
    a_burst_of_600_joins_and_leaves_reaches_a_socketio_watcher().await;
    a_socketio_watcher_that_stops_polling_is_closed_and_its_presence_removed().await;
}

async fn a_burst_of_600_joins_and_leaves_reaches_a_socketio_watcher() {
    const BURST: usize = 600;
    let server = spawn(settings()).await;
    let mut watcher = Eio::open(&server, WEBSOCKET).await.expect("watcher");
    watcher.connect().await;
    watcher.join("busy", "watcher").await;
    let burst = futures_util::future::join_all((0..BURST).map(|i| {
        let url = server.ws_url(&format!("/v1/ws?room=busy&socket_session_id=burst-{i}"));
        async move {
            tokio_tungstenite::connect_async(url)
                .await
                .expect("burst upgrade")
                .0
        }
    }))
    .await;
    drop(burst);
    // 1,200 presence:events, far more than SOCKETIO_MAX_BUFFER (64): all of them arrive,
    // in order, and the watcher stays open.
    let (mut joins, mut leaves) = (0, 0);
    let mut present = HashSet::new();
    while leaves < BURST {
        let packet = watcher.next().await;
        let Some((name, e)) = event(&packet) else {
            continue;
        };
        if name != "presence:event" {
            continue;
        }
        let user = e["userId"].as_str().unwrap_or("");
        if !user.starts_with("burst-") {
            continue;
        }
        match e["type"].as_str() {
            Some("join") => {
                joins += 1;
                present.insert(e["connId"].as_str().unwrap_or("").to_owned());
            }
            Some("leave") => {
                leaves += 1;
                assert!(
                    present.remove(e["connId"].as_str().unwrap_or("")),
                    "a leave before its join: {e}"
                );
            }
            _ => {}
        }
    }
    assert_eq!((joins, leaves), (BURST, BURST));
    assert!(present.is_empty());
    let ack = watcher.join("busy", "watcher").await;
    assert_eq!(ack[0]["ok"], true, "{ack}");
    let (_, m) = server.get_text("/metrics").await;
    assert_eq!(metric(&m, "activenow_slow_consumers_total"), 0);
    server.stop().await;
}

async fn a_socketio_watcher_that_stops_polling_is_closed_and_its_presence_removed() {
    let mut s = settings();
    s.slow_consumer_timeout_ms = 1000;
    let server = spawn(s).await;
    let mut fast = server.ws("/v1/ws?room=stall&socket_session_id=fast").await;
    fast.expect_type("hello").await;
    // A polling member that reads its CONNECT and then never polls again (its heartbeat
    // would take SOCKETIO_PING_INTERVAL_MS + SOCKETIO_PING_TIMEOUT_MS = 45 s to notice).
    let polling = Polling::new(&server);
    let sid = polling.handshake().await.expect("session");
    assert_eq!(polling.post(&sid, "40").await, 200);
    let (_, connect) = polling.get(&sid).await;
    assert!(connect.contains("40{"), "{connect}");
    let join = serde_json::json!(["presence:join", {"roomId": "stall", "userId": "stalled"}]);
    assert_eq!(polling.post(&sid, &format!("421{join}")).await, 200);
    fast.until(|v| v["type"] == "ACTIVITY_JOIN_PRESENCE" && v["data"]["identity"] == "stalled")
        .await;
    // Updates to the room: 100 presence:events for a session that holds 64.
    for i in 0..100 {
        let body = serde_json::json!({"room_name": "stall", "display_name": format!("n{i}")});
        let (status, _) = server
            .post(
                "/v1/activity/presence/update",
                &[("x-socket-session-id", "fast")],
                &body.to_string(),
            )
            .await;
        assert_eq!(status, 200);
    }
    // SLOW_CONSUMER_TIMEOUT_MS later the session is closed and its presence removed.
    fast.until(|v| v["type"] == "ACTIVITY_LEAVE_PRESENCE" && v["data"]["identity"] == "stalled")
        .await;
    let (_, m) = server.get_text("/metrics").await;
    assert_eq!(metric(&m, "activenow_slow_consumers_total"), 1);
    let (_, list) = server.get("/v1/activity/presence?room_name=stall").await;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    server.stop().await;
}
