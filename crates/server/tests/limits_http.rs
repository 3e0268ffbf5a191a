//! HTTP timeouts and per-IP limits through real TCP sockets (docs/limits-http.md): slowloris
//! connections and incomplete WebSocket handshakes are dropped after the header timeout while
//! other clients are served; idle keep-alives close; slow and oversized bodies are cut;
//! MAX_CONNECTIONS_PER_IP refuses the next connection with 429, counting X-Forwarded-For
//! clients only behind TRUSTED_PROXIES; the handshake rate refuses with 429.

mod common;

use std::time::Duration;

use activenow::Settings;
use common::{spawn, TestServer, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection (EOF or reset); returns what it sent.
async fn read_to_close(tcp: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(WAIT, tcp.read(&mut buf)).await {
            Err(_) => panic!(
                "connection still open after {WAIT:?}; received {:?}",
                String::from_utf8_lossy(&out)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => return String::from_utf8_lossy(&out).into_owned(),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one whole response of a keep-alive connection (headers and Content-Length body).
async fn read_response(tcp: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&out).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= len {
                return text;
            }
        }
        let n = tokio::time::timeout(WAIT, tcp.read(&mut buf))
            .await
            .expect("response within the wait")
            .expect("read");
        assert!(n > 0, "closed before a whole response: {text:?}");
        out.extend_from_slice(&buf[..n]);
    }
}

fn settings(f: impl FnOnce(&mut Settings)) -> Settings {
    let mut s = common::settings();
    f(&mut s);
    s
}

async fn metric(server: &TestServer, name: &str) -> u64 {
    let (_, text) = server.get_text("/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

#[tokio::test]
async fn slowloris_connections_are_dropped_after_the_header_timeout() {
    let server = spawn(settings(|s| {
        s.http_header_timeout_ms = 300;
        // Far beyond the wait: only the header timeout can close these.
        s.http_idle_timeout_ms = 600_000;
        s.http_body_timeout_ms = 600_000;
    }))
    .await;
    let mut slow = Vec::new();
    for i in 0..40 {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        let half = if i % 2 == 0 {
            "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n".to_owned()
        } else {
            // A WebSocket handshake that never completes.
            "GET /v1/ws?room=r HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                .to_owned()
        };
        tcp.write_all(half.as_bytes()).await.unwrap();
        slow.push(tcp);
    }
    // A connection that never sends a byte is a slowloris too.
    slow.push(TcpStream::connect(server.addr).await.unwrap());
    // Everyone else is served meanwhile: HTTP and WebSocket.
    let (status, body) = server.get("/health").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let mut ws = server.ws("/v1/ws?room=lobby").await;
    assert_eq!(ws.next_json().await["type"], "hello");
    for tcp in &mut slow {
        let got = read_to_close(tcp).await;
        assert_eq!(got, "", "dropped without a response");
    }
    assert!(metric(&server, "activenow_http_timeouts_total").await >= 41);
    // The socket opened before them is still served.
    ws.send_json(serde_json::json!({"type": "hb"})).await;
    let (status, _) = server.get("/health").await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let server = spawn(settings(|s| {
        s.http_header_timeout_ms = 600_000;
        s.http_idle_timeout_ms = 1000;
    }))
    .await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    for _ in 0..2 {
        tcp.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let resp = read_response(&mut tcp).await;
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    }
    // Kept alive between requests, then closed when idle for HTTP_IDLE_TIMEOUT_MS.
    assert_eq!(read_to_close(&mut tcp).await, "");
    server.stop().await;
}

#[tokio::test]
async fn a_slow_body_gets_408_and_a_big_one_413() {
    let server = spawn(settings(|s| {
        s.http_body_timeout_ms = 300;
        s.http_header_timeout_ms = 600_000;
        s.http_idle_timeout_ms = 600_000;
    }))
    .await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(
        b"POST /api/online/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"playerId\":",
    )
    .await
    .unwrap();
    let got = read_to_close(&mut tcp).await;
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("body_timeout"), "{got}");

    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(
        b"POST /api/online/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{",
    )
    .await
    .unwrap();
    let got = read_to_close(&mut tcp).await;
    assert!(got.starts_with("HTTP/1.1 413"), "{got}");
    // A chunked body without a length is cut at the limit too.
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let chunk = "x".repeat(70_000);
    let req = format!(
        "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n",
        chunk.len()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let got = read_to_close(&mut tcp).await;
    assert!(got.starts_with("HTTP/1.1 413"), "{got}");
    // Normal bodies still pass.
    let (status, body) = server
        .post("/api/online/login", &[], r#"{"playerId":"p1"}"#)
        .await;
    assert_eq!(status, 200, "{body}");
    server.stop().await;
}

#[tokio::test]
async fn the_connection_after_max_connections_per_ip_is_refused() {
    let server = spawn(settings(|s| s.max_connections_per_ip = 3)).await;
    let mut ws1 = server.ws("/v1/ws?room=r").await;
    assert_eq!(ws1.next_json().await["type"], "hello");
    let _ws2 = server.ws("/v1/ws/web").await;
    let _idle = TcpStream::connect(server.addr).await.unwrap();
    let mut fourth = TcpStream::connect(server.addr).await.unwrap();
    let got = read_to_close(&mut fourth).await;
    assert!(got.starts_with("HTTP/1.1 429"), "{got}");
    assert!(got.contains("MAX_CONNECTIONS_PER_IP"), "{got}");
    assert_eq!(server.try_ws("/v1/ws?room=r", &[]).await.err(), Some(429));
    // A closed socket gives its place back.
    ws1.close().await;
    let counts = server.state().limits.connections.clone().unwrap();
    let me = "127.0.0.1".parse().unwrap();
    tokio::time::timeout(WAIT, async {
        while counts.held(me) > 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the closed socket's place is freed");
    let mut ws = server.ws("/v1/ws?room=r").await;
    assert_eq!(ws.next_json().await["type"], "hello");
    server.stop().await;
}

#[tokio::test]
async fn forwarded_clients_are_counted_only_behind_a_trusted_proxy() {
    // Behind a trusted proxy (127.0.0.1): WebSockets per forwarded client.
    let proxied = spawn(settings(|s| {
        s.max_connections_per_ip = 2;
        s.trusted_proxies = "127.0.0.0/8".into();
    }))
    .await;
    let a = [("x-forwarded-for", "5.5.5.5")];
    let forged = [("x-forwarded-for", "1.1.1.1, 5.5.5.5")];
    let _a1 = proxied.try_ws("/v1/ws?room=r", &a).await.unwrap();
    let _a2 = proxied.try_ws("/v1/ws?room=r", &forged).await.unwrap();
    assert_eq!(
        proxied.try_ws("/v1/ws?room=r", &a).await.err(),
        Some(429),
        "5.5.5.5 holds 2 (the forged left entry proves nothing)"
    );
    let b = [("x-forwarded-for", "6.6.6.6")];
    let _b1 = proxied.try_ws("/v1/ws?room=r", &b).await.unwrap();
    // The proxy's own HTTP connections are not limited.
    for _ in 0..5 {
        assert_eq!(proxied.get("/health").await.0, 200);
    }
    proxied.stop().await;

    // Without TRUSTED_PROXIES the header is the client's word: ignored.
    let direct = spawn(settings(|s| s.max_connections_per_ip = 2)).await;
    let _c1 = direct.try_ws("/v1/ws?room=r", &a).await.unwrap();
    let _c2 = direct.try_ws("/v1/ws?room=r", &b).await.unwrap();
    let other = [("x-forwarded-for", "7.7.7.7")];
    assert_eq!(
        direct.try_ws("/v1/ws?room=r", &other).await.err(),
        Some(429)
    );
    direct.stop().await;
}

#[tokio::test]
async fn handshakes_beyond_the_per_ip_rate_get_429() {
    let server = spawn(settings(|s| s.max_handshakes_per_ip_per_second = 1)).await;
    let mut refused = 0;
    let mut open = Vec::new();
    // Burst of 2, then 1 per second: 10 quick attempts cannot all pass.
    for _ in 0..10 {
        match server.try_ws("/v1/ws/web", &[]).await {
            Ok(ws) => open.push(ws),
            Err(status) => {
                assert_eq!(status, 429);
                refused += 1;
            }
        }
    }
    assert!(refused > 0 && !open.is_empty(), "refused {refused}");
    drop(open);
    // Engine.IO polling handshakes count as handshakes (at most one passes per second).
    let mut polling_refused = None;
    for _ in 0..5 {
        let resp = reqwest::get(server.url("/socket.io/?EIO=4&transport=polling"))
            .await
            .unwrap();
        if resp.status().as_u16() == 429 {
            polling_refused = Some(resp.json::<serde_json::Value>().await.unwrap());
            break;
        }
    }
    let body = polling_refused.expect("a polling handshake refused");
    assert_eq!(body["error"], "too_many_handshakes");
    // Plain requests are not handshakes.
    for _ in 0..5 {
        assert_eq!(server.get("/health").await.0, 200);
    }
    server.stop().await;
}

#[tokio::test]
async fn a_full_size_metadata_value_fits_an_http_write_and_other_routes_keep_their_limit() {
    let server = spawn(settings(|s| s.api_key = "k".into())).await;
    let value = "v".repeat(65_536);
    let body = serde_json::json!({"data":[{"key":"big","value":value}], "actorUserId":"alice"});
    let resp = reqwest::Client::new()
        .put(server.url("/v1/channels/room/big-room/metadata"))
        .bearer_auth("k")
        .json(&body)
        .send()
        .await
        .expect("PUT");
    let status = resp.status().as_u16();
    let v: serde_json::Value = resp.json().await.unwrap_or_default();
    assert_eq!(status, 200, "{v}");
    let (status, v) = server.get("/v1/channels/room/big-room/metadata").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["metadata"]["big"]["value"].as_str().map(str::len),
        Some(65_536)
    );
    // The same size elsewhere is still over HTTP_MAX_BODY_BYTES.
    let (status, v) = server
        .post("/api/online/login", &[], &body.to_string())
        .await;
    assert_eq!(status, 413, "{v}");
    server.stop().await;
}
