//! Issue 12 (part A): a hostile or broken client cannot hurt anyone else. Each test is an
//! attack through real sockets: a raw TCP client where frames must be crafted or reading must
//! stop (a tiny SO_RCVBUF, never read), real WebSocket clients for everyone else.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::raw::{client_frame, close_frame, metric, raw_ws, until_eof};
use common::{settings, spawn, Ended, WAIT};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

async fn members(server: &common::TestServer, room: &str) -> Vec<String> {
    let (_, list) = server
        .get(&format!("/v1/activity/presence?room_name={room}"))
        .await;
    let mut ids: Vec<String> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["identity"].as_str().expect("identity").to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_socket_that_stops_reading_is_dropped_and_its_presence_and_slot_freed() {
    let mut s = settings();
    s.slow_consumer_timeout_ms = 300;
    s.max_frame_bytes = 200_000;
    s.http_max_body_bytes = 200_000;
    let server = spawn(s).await;
    let mut stuck = raw_ws(server.addr, "/v1/ws?room=stuck&socket_session_id=stuck").await;
    let mut fast = server.ws("/v1/ws?room=stuck&socket_session_id=fast").await;
    fast.expect_type("hello").await;
    let fast = tokio::spawn(async move { while let Some(Ok(_)) = fast.stream.next().await {} });
    let (_, m) = server.get_text("/metrics").await;
    assert_eq!(metric(&m, "activenow_connections"), 2);
    // `stuck` never reads: large updates fill its kernel buffers, then its writes block.
    let body = json!({"room_name": "stuck", "display_name": "n".repeat(100_000)}).to_string();
    let started = Instant::now();
    loop {
        let (status, _) = server
            .post(
                "/v1/activity/presence/update",
                &[("x-socket-session-id", "fast")],
                &body,
            )
            .await;
        assert_eq!(status, 200);
        let (_, m) = server.get_text("/metrics").await;
        if metric(&m, "activenow_connections") == 1 {
            break;
        }
        assert!(
            started.elapsed() < WAIT * 3,
            "the stuck socket was never dropped"
        );
    }
    assert_eq!(members(&server, "stuck").await, ["fast"]);
    // Reading now drains what the kernel held, then the end of the stream: the server
    // closed the TCP connection itself.
    until_eof(&mut stuck).await;
    fast.abort();
    server.stop().await;
}

/// Reads a watcher's events until it has seen every burst member join and leave and the
/// count is back to `final_count`; panics if the socket ends first.
async fn watch_burst(mut w: common::Client, burst: usize, final_count: u64) -> common::Client {
    let mut present = HashSet::new();
    let (mut joins, mut leaves, mut count) = (0, 0, 0);
    while leaves < burst || count != final_count {
        let next = tokio::time::timeout(WAIT, w.stream.next())
            .await
            .expect("events keep coming");
        let v: serde_json::Value = match next {
            Some(Ok(Message::Text(t))) => serde_json::from_str(&t).expect("JSON"),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("the healthy watcher was closed: {other:?}"),
        };
        let id = v["data"]["identity"].as_str().unwrap_or("").to_owned();
        match v["type"].as_str() {
            Some("sync") => count = v["count"].as_u64().expect("count"),
            Some("ACTIVITY_JOIN_PRESENCE") if id.starts_with("burst-") => {
                joins += 1;
                present.insert(id);
            }
            Some("ACTIVITY_LEAVE_PRESENCE") if id.starts_with("burst-") => {
                leaves += 1;
                present.remove(&id);
            }
            _ => {}
        }
    }
    assert_eq!(joins, burst);
    assert!(
        present.is_empty(),
        "{} burst members left over",
        present.len()
    );
    w
}

#[tokio::test]
async fn six_hundred_joins_and_cuts_at_once_do_not_close_healthy_watchers() {
    const BURST: usize = 600;
    let server = spawn(settings()).await;
    let mut watchers = Vec::new();
    for i in 0..3 {
        let mut w = server
            .ws(&format!("/v1/ws?room=busy&socket_session_id=watcher-{i}"))
            .await;
        w.expect_type("hello").await;
        watchers.push(w);
    }
    // Everything the watchers were told so far (each other's joins) is read by the watch.
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
    // Cut them all at once: TCP closes without a close handshake.
    drop(burst);
    let watches: Vec<_> = watchers
        .into_iter()
        .map(|w| tokio::spawn(watch_burst(w, BURST, 3)))
        .collect();
    let mut still_open = Vec::new();
    for w in watches {
        still_open.push(w.await.expect("watcher ended on the right state"));
    }
    assert_eq!(members(&server, "busy").await.len(), 3);
    drop(still_open);
    server.stop().await;
}

#[tokio::test]
async fn six_hundred_visitors_at_once_do_not_close_healthy_visitor_sockets() {
    const BURST: usize = 600;
    let server = spawn(settings()).await;
    let mut watchers = Vec::new();
    for i in 0..2 {
        let mut w = server
            .ws(&format!("/v1/ws/web?socket_session_id=watcher-{i}"))
            .await;
        w.expect_type("GATEWAY_CONNECT").await;
        watchers.push(w);
    }
    let burst = futures_util::future::join_all((0..BURST).map(|i| {
        let url = server.ws_url(&format!("/v1/ws/web?socket_session_id=burst-{i}"));
        async move {
            tokio_tungstenite::connect_async(url)
                .await
                .expect("burst")
                .0
        }
    }))
    .await;
    drop(burst);
    let watches: Vec<_> = watchers
        .into_iter()
        .map(|mut w| {
            tokio::spawn(async move {
                let mut offline = HashSet::new();
                let mut online = u64::MAX;
                while offline.len() < BURST || online != 2 {
                    let v = w.next_json().await;
                    if v["type"] == "VISITOR_OFFLINE" {
                        let id = v["data"]["sessionId"].as_str().unwrap_or("").to_owned();
                        if id.starts_with("burst-") {
                            offline.insert(id);
                        }
                    }
                    if let Some(n) = v["data"]["online"].as_u64() {
                        online = n;
                    }
                }
            })
        })
        .collect();
    for w in watches {
        w.await.expect("visitor socket ended on the right count");
    }
    server.stop().await;
}

#[tokio::test]
async fn protocol_violations_close_with_1002_and_1007() {
    let server = spawn(settings()).await;
    let path = "/v1/ws?room=proto";
    // Reserved bit 1 set on a masked text frame.
    let mut a = raw_ws(server.addr, path).await;
    a.write_all(&client_frame(0x80 | 0x40 | 0x1, b"{}", true))
        .await
        .expect("write");
    let (code, reason) = close_frame(&mut a).await.expect("a close frame");
    assert_eq!(code, 1002, "{reason}");
    assert!(reason.contains("reserved"), "{reason}");
    // An unmasked client frame.
    let mut b = raw_ws(server.addr, path).await;
    b.write_all(&client_frame(0x81, br#"{"type":"hb"}"#, false))
        .await
        .expect("write");
    let (code, reason) = close_frame(&mut b).await.expect("a close frame");
    assert_eq!(code, 1002, "{reason}");
    assert!(reason.contains("unmasked"), "{reason}");
    // A text frame that is not UTF-8.
    let mut c = raw_ws(server.addr, path).await;
    c.write_all(&client_frame(0x81, &[b'"', 0xff, 0xfe, b'"'], true))
        .await
        .expect("write");
    let (code, reason) = close_frame(&mut c).await.expect("a close frame");
    assert_eq!(code, 1007, "{reason}");
    server.stop().await;
}

#[tokio::test]
async fn error_frames_echo_only_a_few_dozen_bytes_of_client_input() {
    let mut s = settings();
    s.max_frame_bytes = 200_000;
    s.http_max_body_bytes = 200_000;
    let server = spawn(s).await;
    let mut c = server.ws("/v1/ws?room=echo").await;
    c.expect_type("hello").await;
    let huge = "t".repeat(60_000);
    c.send_json(json!({"type": huge})).await;
    let e = c.until_type("error").await;
    assert_eq!(e["code"], "unknown_type");
    assert!(e.to_string().len() < 200, "{}", e.to_string().len());
    c.send_text(&format!("{{\"type\": 5, \"x\": \"{huge}"))
        .await;
    let e = c.expect_type("error").await;
    assert_eq!(e["code"], "bad_json");
    assert!(e.to_string().len() < 300, "{}", e.to_string().len());
    server.stop().await;
}

#[tokio::test]
async fn a_ping_flood_is_rate_limited_and_closed_with_1008() {
    let mut s = settings();
    s.max_messages_per_second = 20;
    let server = spawn(s).await;
    let mut c = server.ws("/v1/ws?room=pings").await;
    c.expect_type("hello").await;
    for _ in 0..200 {
        if c.stream
            .send(Message::Ping(Vec::new().into()))
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(c.ended().await, Ended::Closed(Some(1008)));
    let (_, m) = server.get_text("/metrics").await;
    assert!(metric(&m, "activenow_rate_limited_total") > 0);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_within_the_grace_and_readers_get_1012() {
    let mut s = settings();
    // Long enough that the stuck sockets are still stuck when the shutdown starts.
    s.slow_consumer_timeout_ms = 60_000;
    s.max_frame_bytes = 200_000;
    s.http_max_body_bytes = 200_000;
    let server = spawn(s).await;
    let mut stuck = Vec::new();
    for i in 0..3 {
        let path = format!("/v1/ws?room=bye&socket_session_id=stuck-{i}");
        stuck.push(raw_ws(server.addr, &path).await);
    }
    let mut readers = Vec::new();
    for i in 0..2 {
        let mut r = server
            .ws(&format!("/v1/ws?room=bye-readers&socket_session_id=r{i}"))
            .await;
        r.expect_type("hello").await;
        readers.push(r);
    }
    // Fill the stuck sockets' kernel buffers so their writes block.
    let mut feeder = server.ws("/v1/ws?room=bye&socket_session_id=feeder").await;
    feeder.expect_type("hello").await;
    let body = json!({"room_name": "bye", "display_name": "n".repeat(100_000)}).to_string();
    for _ in 0..80 {
        let (status, _) = server
            .post(
                "/v1/activity/presence/update",
                &[("x-socket-session-id", "feeder")],
                &body,
            )
            .await;
        assert_eq!(status, 200);
    }
    // A slowloris HTTP request: headers that never end.
    let mut slowloris = TcpStream::connect(server.addr).await.expect("connect");
    slowloris
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("write");
    let grace = Duration::from_secs(4);
    let started = Instant::now();
    let stop = tokio::spawn(server.stop_within(grace));
    for r in &mut readers {
        assert_eq!(r.ended().await, Ended::Closed(Some(1012)));
    }
    stop.await.expect("shutdown");
    let took = started.elapsed();
    assert!(
        took <= grace + Duration::from_millis(500),
        "shutdown took {took:?}"
    );
    drop((stuck, slowloris, feeder));
}

#[tokio::test]
async fn a_ping_flood_closes_the_engine_io_session() {
    let server = spawn(settings()).await;
    let mut ws = raw_ws(server.addr, "/socket.io/?EIO=4&transport=websocket").await;
    let ping = client_frame(0x89, b"p", true);
    for _ in 0..500 {
        if ws.write_all(&ping).await.is_err() {
            break;
        }
    }
    until_eof(&mut ws).await;
    server.stop().await;
}
