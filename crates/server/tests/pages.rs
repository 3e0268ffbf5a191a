//! `/demo`, `/dashboard`, `/sdk.js` and the stats endpoints over real HTTP and WebSocket
//! clients. The pages in a real browser: js-tests/browser.

mod common;

use std::time::Duration;

use common::{settings, spawn, WAIT};
use serde_json::Value;

/// Reads a `text/event-stream` response until a `snapshot` event satisfies `want`.
async fn next_snapshot(
    resp: &mut reqwest::Response,
    buffer: &mut String,
    want: impl Fn(&Value) -> bool,
) -> Value {
    tokio::time::timeout(WAIT, async {
        loop {
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let data: String = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if data.is_empty() {
                    continue;
                }
                let v: Value = serde_json::from_str(&data).expect("snapshot is JSON");
                if want(&v) {
                    return v;
                }
            }
            let chunk = resp.chunk().await.expect("read").expect("stream ended");
            buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .expect("no such snapshot within the wait")
}

fn room_count(v: &Value, room: &str) -> Option<u64> {
    v["rooms"]
        .as_array()?
        .iter()
        .find(|r| r["room"] == room)
        .and_then(|r| r["count"].as_u64())
}

#[tokio::test]
async fn pages_and_the_sdk_bundle_are_served_with_a_strict_policy() {
    let server = spawn(settings()).await;
    let http = reqwest::Client::new();
    for (path, kind, needle) in [
        ("/demo", "text/html", "/sdk.js"),
        ("/dashboard", "text/html", "/assets/dashboard.js"),
        ("/sdk.js", "text/javascript", "ActiveNow"),
        ("/assets/demo.js", "text/javascript", "client.room"),
        (
            "/assets/dashboard.js",
            "text/javascript",
            "/v1/stats/stream",
        ),
        ("/assets/pages.css", "text/css", "svg.chart"),
    ] {
        let resp = http.get(server.url(path)).send().await.expect("get");
        assert_eq!(resp.status(), 200, "{path}");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with(kind), "{path}: {ct}");
        if kind == "text/html" {
            let csp = resp.headers()["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("script-src 'self'"), "{csp}");
        }
        let body = resp.text().await.expect("body");
        assert!(body.contains(needle), "{path} lacks {needle}");
    }
    server.stop().await;
}

#[tokio::test]
async fn pages_can_be_turned_off_and_the_stats_stay() {
    let mut s = settings();
    s.pages = false;
    let server = spawn(s).await;
    assert_eq!(server.get_text("/demo").await.0, 404);
    assert_eq!(server.get_text("/sdk.js").await.0, 404);
    assert_eq!(server.get("/v1/stats").await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn snapshot_lists_rooms_busiest_first_and_sockets_per_protocol() {
    let server = spawn(settings()).await;
    let mut a = server.ws("/v1/ws?room=quiet&socket_session_id=a").await;
    a.expect_type("hello").await;
    let mut b = server.ws("/v1/ws?room=busy&socket_session_id=b").await;
    b.expect_type("hello").await;
    let mut c = server.ws("/v1/ws?room=busy&socket_session_id=c").await;
    c.expect_type("hello").await;
    let mut v = server.ws("/web?socket_session_id=a").await;
    v.until_type("VISITOR_ONLINE").await;
    let (status, snap) = server.get("/v1/stats").await;
    assert_eq!(status, 200);
    let rooms: Vec<(&str, u64)> = snap["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["room"].as_str().unwrap(), r["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(rooms, vec![("busy", 2), ("quiet", 1)]);
    assert_eq!(snap["members"], 3);
    assert_eq!(snap["visitors"]["now"], 1);
    assert_eq!(snap["visitors"]["peak"], 1);
    assert_eq!(snap["connections"]["rooms"], 3);
    assert_eq!(snap["connections"]["visitors"], 1);
    assert_eq!(snap["connections_total"], 4);
    server.stop().await;
}

#[tokio::test]
async fn api_key_guards_the_stats_but_not_the_pages() {
    let mut s = settings();
    s.api_key = "k3y".into();
    let server = spawn(s).await;
    let http = reqwest::Client::new();
    for path in ["/v1/stats", "/v1/stats/history", "/v1/stats/stream"] {
        let r = http.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let r = http
            .get(server.url(path))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let r = http
            .get(server.url(path))
            .bearer_auth("k3y")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    // The page holds no data and no key: it is public.
    let page = server.get_text("/dashboard").await;
    assert_eq!(page.0, 200);
    assert!(!page.1.contains("k3y"));
    server.stop().await;
}

#[tokio::test]
async fn the_stream_pushes_a_room_arriving_and_leaving_without_being_a_member() {
    let mut s = settings();
    s.stats_push_interval_ms = 100;
    let server = spawn(s).await;
    let mut resp = reqwest::get(server.url("/v1/stats/stream"))
        .await
        .expect("stream");
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut buf = String::new();
    let first = next_snapshot(&mut resp, &mut buf, |_| true).await;
    assert_eq!(first["room_count"], 0);
    let mut ws = server.ws("/v1/ws?room=live&socket_session_id=x").await;
    ws.expect_type("hello").await;
    let seen = next_snapshot(&mut resp, &mut buf, |v| room_count(v, "live") == Some(1)).await;
    assert_eq!(seen["members"], 1, "the stream itself is nobody");
    ws.close().await;
    next_snapshot(&mut resp, &mut buf, |v| v["room_count"] == 0).await;
    server.stop().await;
}

#[tokio::test]
async fn streams_beyond_the_limit_get_503_and_a_closed_one_frees_its_place() {
    let mut s = settings();
    s.stats_max_streams = 2;
    let server = spawn(s).await;
    let one = reqwest::get(server.url("/v1/stats/stream")).await.unwrap();
    let two = reqwest::get(server.url("/v1/stats/stream")).await.unwrap();
    assert_eq!((one.status().as_u16(), two.status().as_u16()), (200, 200));
    let (status, body) = server.get("/v1/stats/stream").await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "too_many_streams");
    drop(one);
    // The server notices a closed connection when it next writes to it: make the snapshot
    // change (a room comes and goes) until the place is free, with a bound.
    let freed = tokio::time::timeout(WAIT, async {
        for n in 0.. {
            let mut ws = server.ws(&format!("/v1/ws?room=churn{n}")).await;
            ws.expect_type("hello").await;
            ws.close().await;
            let r = reqwest::get(server.url("/v1/stats/stream")).await.unwrap();
            if r.status() == 200 {
                return r;
            }
        }
        unreachable!()
    })
    .await;
    assert!(freed.is_ok(), "the closed stream's place was never freed");
    drop(two);
    server.stop().await;
}

#[tokio::test]
async fn history_has_a_sample_from_start_up_and_keeps_the_last_n() {
    let mut s = settings();
    s.stats_sample_interval_ms = 100;
    s.stats_history_samples = 3;
    let server = spawn(s).await;
    let mut ws = server.ws("/v1/ws?room=h&socket_session_id=x").await;
    ws.expect_type("hello").await;
    let body = tokio::time::timeout(WAIT, async {
        loop {
            let (_, body) = server.get("/v1/stats/history").await;
            let samples = body["samples"].as_array().cloned().unwrap_or_default();
            if samples.len() == 3 && samples.last().map(|s| s["members"] == 1) == Some(true) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("three samples, the last with the member");
    assert_eq!(body["interval_ms"], 100);
    assert_eq!(body["capacity"], 3);
    let ts: Vec<u64> = body["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["ts"].as_u64().unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "oldest first: {ts:?}");
    server.stop().await;
}
