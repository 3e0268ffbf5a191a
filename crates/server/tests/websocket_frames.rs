//! ActiveNow's own WebSocket (`transport/websocket`) through a real socket, with frames
//! written by hand: what a client library would not send, or not send this way.

mod common;

use common::raw::{client_frame, close_frame, raw_ws};
use common::{settings, spawn, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The next server frame: (opcode, payload).
async fn next_frame(stream: &mut TcpStream, buf: &mut Vec<u8>) -> (u8, Vec<u8>) {
    loop {
        if buf.len() >= 2 {
            let (len, head) = match buf[1] & 0x7f {
                126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
                127 if buf.len() >= 10 => {
                    let mut n = [0u8; 8];
                    n.copy_from_slice(&buf[2..10]);
                    (u64::from_be_bytes(n) as usize, 10)
                }
                126 | 127 => (usize::MAX, 10),
                n => (n as usize, 2),
            };
            if len != usize::MAX && buf.len() >= head + len {
                let opcode = buf[0] & 0x0f;
                let payload = buf[head..head + len].to_vec();
                buf.drain(..head + len);
                return (opcode, payload);
            }
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("a frame in time")
            .expect("read");
        assert!(n > 0, "the server closed the stream");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads frames until one with `opcode` whose payload contains `needle`.
async fn until(stream: &mut TcpStream, buf: &mut Vec<u8>, opcode: u8, needle: &str) -> Vec<u8> {
    loop {
        let (op, payload) = next_frame(stream, buf).await;
        if op == opcode && String::from_utf8_lossy(&payload).contains(needle) {
            return payload;
        }
    }
}

#[tokio::test]
async fn a_fragmented_message_written_a_byte_at_a_time_with_a_ping_inside_is_served() {
    let server = spawn(settings()).await;
    let mut s = raw_ws(server.addr, "/v1/ws?room=frames").await;
    s.set_nodelay(true).expect("nodelay");
    let mut buf = Vec::new();
    until(&mut s, &mut buf, 0x1, "hello").await;
    let mut bytes = client_frame(0x01, br#"{"type":"#, true);
    bytes.extend(client_frame(0x89, b"are you there", true));
    bytes.extend(client_frame(0x80, br#""nope"}"#, true));
    // One byte per write: every frame header and payload arrives split across reads.
    for b in bytes {
        s.write_all(&[b]).await.expect("write");
        s.flush().await.expect("flush");
    }
    let pong = until(&mut s, &mut buf, 0xA, "").await;
    assert_eq!(pong, b"are you there", "the pong echoes the ping's payload");
    let error = until(&mut s, &mut buf, 0x1, "error").await;
    let error: serde_json::Value = serde_json::from_slice(&error).expect("JSON");
    assert_eq!(error["code"], "unknown_type", "{error}");
    server.stop().await;
}

#[tokio::test]
async fn a_close_is_answered_with_the_same_code() {
    let server = spawn(settings()).await;
    let mut s = raw_ws(server.addr, "/v1/ws?room=frames").await;
    s.write_all(&client_frame(0x88, b"\x0f\xa0bye", true))
        .await
        .expect("write");
    let (code, _) = close_frame(&mut s).await.expect("a close answer");
    assert_eq!(code, 4000);
    server.stop().await;
}

#[tokio::test]
async fn a_frame_announced_over_the_limit_is_refused_before_its_payload() {
    let server = spawn(settings()).await;
    let mut s = raw_ws(server.addr, "/v1/ws?room=frames").await;
    // A text frame announcing 2^32 bytes, then nothing: refused from the header alone.
    let header = [0x81, 0x80 | 127, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4];
    s.write_all(&header).await.expect("write");
    let (code, reason) = close_frame(&mut s).await.expect("a close frame");
    assert_eq!(code, 1009, "{reason}");
    // A close code no endpoint may send (1005) is a protocol error.
    let mut t = raw_ws(server.addr, "/v1/ws?room=frames").await;
    t.write_all(&client_frame(0x88, b"\x03\xed", true))
        .await
        .expect("write");
    let (code, reason) = close_frame(&mut t).await.expect("a close frame");
    assert_eq!(code, 1002, "{reason}");
    server.stop().await;
}

#[tokio::test]
async fn a_backlog_of_large_frames_reaches_a_reader_that_was_behind() {
    let mut s = settings();
    s.max_frame_bytes = 200_000;
    s.http_max_body_bytes = 200_000;
    let server = spawn(s).await;
    // A reader with a 1 KiB receive buffer that reads nothing while 30 updates of 100 KB
    // are made: its frames wait in the outbox, then leave in batches once it reads.
    let mut reader = raw_ws(server.addr, "/v1/ws?room=backlog&socket_session_id=reader").await;
    let mut buf = Vec::new();
    until(&mut reader, &mut buf, 0x1, "hello").await;
    let mut writer = server
        .ws("/v1/ws?room=backlog&socket_session_id=writer")
        .await;
    writer.expect_type("hello").await;
    let body = serde_json::json!({"room_name": "backlog", "display_name": "n".repeat(100_000)})
        .to_string();
    for _ in 0..30 {
        let (status, _) = server
            .post(
                "/v1/activity/presence/update",
                &[("x-socket-session-id", "writer")],
                &body,
            )
            .await;
        assert_eq!(status, 200);
    }
    let mut updates = 0;
    while updates < 30 {
        let (op, payload) = next_frame(&mut reader, &mut buf).await;
        assert_ne!(op, 0x8, "closed: {}", String::from_utf8_lossy(&payload));
        if op == 0x1 && String::from_utf8_lossy(&payload).contains("ACTIVITY_UPDATE_PRESENCE") {
            updates += 1;
        }
    }
    server.stop().await;
}
