//! Issue 12 (part A) on Socket.IO / Engine.IO: memory per connection is bounded and a client
//! that stops reading is dropped, through raw Engine.IO WebSockets (a real Socket.IO client
//! library always reads). The server runs in this process, so its memory is this process's
//! RSS; this file holds one test function only, so no other test allocates meanwhile (and
//! none sets the process-wide Engine.IO limits to other values).

mod common;

use std::time::Instant;

use common::raw::{client_frame, metric, raw_ws, until_eof};
use common::{settings, spawn, WAIT};
use futures_util::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ENGINE_IO_WS: &str = "/socket.io/?EIO=4&transport=websocket";

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

/// One test function, the two attacks in turn: the Engine.IO limits are process-wide, and
/// the memory measurement must not see another test's allocations.
#[tokio::test]
async fn engine_io_memory_is_bounded_and_a_non_reader_is_dropped() {
    pings_from_a_client_that_never_reads_do_not_grow_server_memory().await;
    a_socketio_client_that_stops_reading_is_dropped_and_its_presence_freed().await;
}

async fn pings_from_a_client_that_never_reads_do_not_grow_server_memory() {
    let mut s = settings();
    // The rate limit would close this flood early; the buffer bound is what is tested here.
    s.max_messages_per_second = 10_000_000;
    let server = spawn(s).await;
    let mut ws = raw_ws(server.addr, ENGINE_IO_WS).await;
    let ping = client_frame(0x89, &[b'p'; 125], true);
    let mut batch = Vec::with_capacity(ping.len() * 1000 + 8);
    for _ in 0..1000 {
        batch.extend_from_slice(&ping);
    }
    // An Engine.IO pong ("3") in each batch keeps the session alive (a client that does not
    // read can still send).
    batch.extend_from_slice(&client_frame(0x81, b"3", true));
    // 52 MB of pings: unbounded, the server would buffer ~48 MB of pongs.
    let mut before = None;
    for round in 0..400 {
        tokio::time::timeout(WAIT, ws.write_all(&batch))
            .await
            .expect("the server keeps reading")
            .expect("write");
        // Measured once the kernel buffers of both sides are full.
        if round == 100 {
            before = Some(rss_bytes());
        }
    }
    let grown = rss_bytes().saturating_sub(before.expect("measured"));
    eprintln!(
        "52 MB of unread pings: server RSS grew {} KiB",
        grown / 1024
    );
    assert!(
        grown < 24 * 1024 * 1024,
        "server memory grew by {} MiB",
        grown / (1024 * 1024)
    );
    drop(ws);
    server.stop().await;
}

async fn a_socketio_client_that_stops_reading_is_dropped_and_its_presence_freed() {
    let mut s = settings();
    s.max_messages_per_second = 10_000_000;
    s.slow_consumer_timeout_ms = 300;
    s.max_frame_bytes = 200_000;
    s.http_max_body_bytes = 200_000;
    let server = spawn(s).await;
    // An ActiveNow member sees the Socket.IO member join; its large updates then reach the
    // Socket.IO member as presence:event.
    let mut fast = server
        .ws("/v1/ws?room=sio-stuck&socket_session_id=fast")
        .await;
    fast.expect_type("hello").await;
    let mut ws = raw_ws(server.addr, "/socket.io/?EIO=4&transport=websocket").await;
    // Socket.IO connect, then join; the replies stay unread in the kernel.
    for text in [
        "40".to_owned(),
        format!(
            "42{}",
            json!(["presence:join", {"roomId": "sio-stuck", "userId": "stuck"}])
        ),
    ] {
        let mut frame = vec![0x81];
        let payload = text.as_bytes();
        frame.push(0x80 | payload.len() as u8);
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(payload);
        ws.write_all(&frame).await.expect("write");
        if text == "40" {
            // As a real client does, wait for the CONNECT reply before the first event;
            // after that, nothing is read.
            let mut seen = Vec::new();
            while !String::from_utf8_lossy(&seen).contains("40{") {
                let mut chunk = [0u8; 512];
                let n = tokio::time::timeout(WAIT, ws.read(&mut chunk))
                    .await
                    .expect("CONNECT in time")
                    .expect("read");
                assert!(n > 0, "closed before CONNECT");
                seen.extend_from_slice(&chunk[..n]);
            }
        }
    }
    fast.until(|v| v["type"] == "ACTIVITY_JOIN_PRESENCE" && v["data"]["identity"] == "stuck")
        .await;
    let fast = tokio::spawn(async move { while let Some(Ok(_)) = fast.stream.next().await {} });
    let body = json!({"room_name": "sio-stuck", "display_name": "n".repeat(100_000)}).to_string();
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
            "the stuck Socket.IO socket was never dropped"
        );
    }
    let (_, list) = server
        .get("/v1/activity/presence?room_name=sio-stuck")
        .await;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["identity"], "fast");
    until_eof(&mut ws).await;
    fast.abort();
    server.stop().await;
}
