//! The online-status API (SPEC §7) through real HTTP and WebSocket clients, with webhooks
//! delivered to a receiver the test runs. Waits are for messages (webhooks, socket frames),
//! with timeouts; TTLs are short settings.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{settings, spawn, Ended, WAIT};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::mpsc;

const SECRET: &str = "whsec-test";

/// How the receiver answers the next delivery.
#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    Hang,
}

struct Delivery {
    headers: HeaderMap,
    body: Bytes,
}

impl Delivery {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Clone)]
struct Receiver {
    answers: Arc<Mutex<VecDeque<Answer>>>,
    tx: mpsc::UnboundedSender<Delivery>,
}

async fn hook(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let answer = r
        .answers
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Answer::Status(200));
    let _ = r.tx.send(Delivery { headers, body });
    match answer {
        Answer::Status(s) => StatusCode::from_u16(s).unwrap(),
        Answer::Hang => {
            std::future::pending::<()>().await;
            StatusCode::OK
        }
    }
}

/// A webhook receiver on 127.0.0.1:0: its URL and the deliveries it gets.
async fn receiver(answers: &[Answer]) -> (String, mpsc::UnboundedReceiver<Delivery>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let state = Receiver {
        answers: Arc::new(Mutex::new(answers.iter().copied().collect())),
        tx,
    };
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

async fn next_delivery(rx: &mut mpsc::UnboundedReceiver<Delivery>) -> Delivery {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("no webhook within the wait")
        .expect("receiver gone")
}

/// The next delivery of `kind` for `player`, skipping others.
async fn expect_event(
    rx: &mut mpsc::UnboundedReceiver<Delivery>,
    kind: &str,
    player: &str,
) -> Delivery {
    loop {
        let d = next_delivery(rx).await;
        let v = d.json();
        if v["type"] == kind && v["data"]["playerId"] == player {
            return d;
        }
    }
}

fn verify(d: &Delivery) {
    let given = d.headers["x-activenow-signature"].to_str().unwrap();
    let hex = given.strip_prefix("sha256=").expect("sha256= prefix");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&d.body);
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hex, want, "signature");
}

fn with_webhook(url: &str) -> activenow::Settings {
    let mut s = settings();
    s.webhook_url = url.to_owned();
    s.webhook_secret = SECRET.into();
    s.webhook_backoff_ms = 10;
    s.presence_reaper_interval_ms = 50;
    s
}

#[tokio::test]
async fn login_heartbeat_logout_lookup_with_every_status_code() {
    let server = spawn(settings()).await;
    let (status, body) = server
        .post(
            "/api/online/login",
            &[],
            r#"{"playerId":"p1","ip":"10.0.0.7"}"#,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["playerId"], "p1");
    assert!(body["message"].is_string());
    let login_time = body["loginTime"].as_u64().unwrap();
    assert!(login_time > 1_600_000_000_000);

    let (status, body) = server
        .post("/api/online/heartbeat", &[], r#"{"playerId":"p1"}"#)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["playerId"], "p1");
    assert!(body["message"].is_string());
    assert!(body["lastHeartbeat"].as_u64().unwrap() >= login_time);

    for path in ["/api/online/player/p1", "/api/online/players/p1"] {
        let (status, rec) = server.get(path).await;
        assert_eq!(status, 200);
        assert_eq!(rec["playerId"], "p1");
        assert_eq!(rec["status"], "online");
        assert_eq!(rec["ip"], "10.0.0.7");
        assert_eq!(rec["loginTime"], login_time);
        assert!(rec["lastHeartbeat"].as_u64().unwrap() >= login_time);
        assert!(rec.get("logoutTime").is_none());
    }
    let (status, list) = server.get("/api/online/players").await;
    assert_eq!(status, 200);
    assert_eq!(list["count"], 1);
    assert_eq!(list["total"], 1);
    assert_eq!(list["players"][0]["playerId"], "p1");
    assert_eq!(list["players"][0]["ip"], "10.0.0.7");
    assert!(list.get("nextCursor").is_none());

    let (status, body) = server
        .post("/api/online/logout", &[], r#"{"playerId":"p1"}"#)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["playerId"], "p1");
    let logout_time = body["logoutTime"].as_u64().unwrap();
    let (status, rec) = server.get("/api/online/player/p1").await;
    assert_eq!(status, 200);
    assert_eq!(rec["status"], "offline");
    assert_eq!(rec["logoutTime"], logout_time);
    assert_eq!(rec["loginTime"], login_time);
    let (_, list) = server.get("/api/online/players").await;
    assert_eq!(list["count"], 0);

    // Not online any more: 404 with an error body.
    let (status, body) = server
        .post("/api/online/heartbeat", &[], r#"{"playerId":"p1"}"#)
        .await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string());
    assert_eq!(
        server
            .post("/api/online/logout", &[], r#"{"playerId":"p1"}"#)
            .await
            .0,
        404
    );
    let (status, body) = server.get("/api/online/player/nobody").await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string());

    // Bad input: 400 with an error body, for every endpoint.
    for path in [
        "/api/online/login",
        "/api/online/heartbeat",
        "/api/online/logout",
    ] {
        for bad in [
            "{}",
            r#"{"playerId":""}"#,
            r#"{"playerId":{"a":1}}"#,
            "not json",
            "[1]",
        ] {
            let (status, body) = server.post(path, &[], bad).await;
            assert_eq!(status, 400, "{path} {bad}");
            assert!(body["error"].is_string(), "{path} {bad}: {body}");
        }
    }
    let long = format!(r#"{{"playerId":"{}"}}"#, "x".repeat(300));
    assert_eq!(server.post("/api/online/login", &[], &long).await.0, 400);

    // Integer ids (as game back ends send them) and the peer address as the default ip.
    let (status, body) = server
        .post("/api/online/login", &[], r#"{"playerId":42}"#)
        .await;
    assert_eq!((status, &body["playerId"]), (200, &json!("42")));
    let (_, rec) = server.get("/api/online/player/42").await;
    assert_eq!(rec["ip"], "127.0.0.1");
    server.stop().await;
}

#[tokio::test]
async fn players_are_listed_in_stable_pages() {
    let server = spawn(settings()).await;
    for id in ["e", "b", "d", "a", "c"] {
        let body = json!({"playerId": id}).to_string();
        assert_eq!(server.post("/api/online/login", &[], &body).await.0, 200);
    }
    let mut seen = Vec::new();
    let mut path = "/api/online/players?limit=2".to_owned();
    loop {
        let (status, page) = server.get(&path).await;
        assert_eq!(status, 200);
        assert_eq!(page["total"], 5);
        let players = page["players"].as_array().unwrap();
        assert_eq!(page["count"], players.len());
        seen.extend(
            players
                .iter()
                .map(|p| p["playerId"].as_str().unwrap().to_owned()),
        );
        match page.get("nextCursor").and_then(Value::as_str) {
            Some(c) => path = format!("/api/online/players?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ["a", "b", "c", "d", "e"]);
    for bad in ["limit=0", "limit=-1", "limit=abc"] {
        let (status, body) = server.get(&format!("/api/online/players?{bad}")).await;
        assert_eq!(status, 400, "{bad}");
        assert!(body["error"].is_string());
    }
    server.stop().await;
}

#[tokio::test]
async fn silent_player_expires_after_the_ttl_with_signed_webhooks() {
    let (url, mut hooks) = receiver(&[]).await;
    let mut s = with_webhook(&url);
    s.online_ttl_ms = 300;
    let server = spawn(s).await;
    assert_eq!(
        server
            .post("/api/online/login", &[], r#"{"playerId":"ttl"}"#)
            .await
            .0,
        200
    );
    let online = expect_event(&mut hooks, "user.online", "ttl").await;
    verify(&online);
    let v = online.json();
    assert_eq!(v["data"]["online"], 1);
    assert!(v["id"].as_str().unwrap().len() >= 16);
    assert!(v["timestamp"].as_u64().unwrap() > 1_600_000_000_000);
    assert_eq!(online.headers["x-activenow-event"], "user.online");
    assert_eq!(online.headers["content-type"], "application/json");

    // No heartbeat: the TTL removes it.
    let offline = expect_event(&mut hooks, "user.offline", "ttl").await;
    verify(&offline);
    assert_eq!(offline.json()["data"]["online"], 0);
    let (_, rec) = server.get("/api/online/player/ttl").await;
    assert_eq!(rec["status"], "offline");
    assert!(rec["logoutTime"].as_u64().is_some());
    assert_eq!(
        server
            .post("/api/online/heartbeat", &[], r#"{"playerId":"ttl"}"#)
            .await
            .0,
        404
    );
    server.stop().await;
}

#[tokio::test]
async fn ping_socket_pongs_and_counts_once_with_http() {
    let (url, mut hooks) = receiver(&[]).await;
    let server = spawn(with_webhook(&url)).await;
    let mut ws = server.ws("/api/online/ws?playerId=both").await;
    ws.send_json(json!({"type": "ping"})).await;
    let pong = ws.expect_type("pong").await;
    assert!(pong["ts"].as_u64().unwrap() > 1_600_000_000_000);
    expect_event(&mut hooks, "user.online", "both").await;
    // The same player through HTTP too: still one player, no second user.online.
    assert_eq!(
        server
            .post("/api/online/heartbeat", &[], r#"{"playerId":"both"}"#)
            .await
            .0,
        200
    );
    let (_, list) = server.get("/api/online/players").await;
    assert_eq!(
        (list["count"].clone(), list["total"].clone()),
        (json!(1), json!(1))
    );
    let (_, rec) = server.get("/api/online/player/both").await;
    assert_eq!(
        (rec["status"].clone(), rec["ip"].clone()),
        (json!("online"), json!("127.0.0.1"))
    );
    // Bad messages get an error frame; the socket stays.
    ws.send_text("nope").await;
    assert_eq!(ws.expect_type("error").await["code"], "bad_json");
    ws.send_json(json!({"type": "dance"})).await;
    assert_eq!(ws.expect_type("error").await["code"], "unknown_type");
    ws.send_json(json!({"type": "ping"})).await;
    ws.expect_type("pong").await;
    // A logout closes the socket and sends the one user.offline.
    assert_eq!(
        server
            .post("/api/online/logout", &[], r#"{"playerId":"both"}"#)
            .await
            .0,
        200
    );
    assert_eq!(ws.ended().await, Ended::Closed(Some(1000)));
    let offline = expect_event(&mut hooks, "user.offline", "both").await;
    verify(&offline);
    assert!(
        server.get("/api/online/ws").await.0 >= 400,
        "a plain GET is no upgrade"
    );
    assert_eq!(
        server.try_ws("/api/online/ws", &[]).await.err(),
        Some(400),
        "playerId required"
    );
    server.stop().await;
}

#[tokio::test]
async fn ten_seconds_without_a_ping_logs_out_and_closes() {
    let (url, mut hooks) = receiver(&[]).await;
    let mut s = with_webhook(&url);
    s.online_ping_timeout_ms = 300;
    let server = spawn(s).await;
    let mut ws = server.ws("/api/online/ws?playerId=quiet").await;
    expect_event(&mut hooks, "user.online", "quiet").await;
    assert_eq!(ws.ended().await, Ended::Closed(Some(1000)));
    expect_event(&mut hooks, "user.offline", "quiet").await;
    let (_, rec) = server.get("/api/online/player/quiet").await;
    assert_eq!(rec["status"], "offline");
    assert!(rec["logoutTime"].is_u64());
    assert_eq!(
        server
            .post("/api/online/heartbeat", &[], r#"{"playerId":"quiet"}"#)
            .await
            .0,
        404
    );
    server.stop().await;
}

#[tokio::test]
async fn http_heartbeats_keep_the_player_online_after_the_socket_drops() {
    let (url, mut hooks) = receiver(&[]).await;
    let mut s = with_webhook(&url);
    s.online_ttl_ms = 800;
    let server = spawn(s).await;
    let mut ws = server.ws("/api/online/ws?playerId=fb").await;
    ws.send_json(json!({"type": "ping"})).await;
    ws.expect_type("pong").await;
    expect_event(&mut hooks, "user.online", "fb").await;
    ws.close().await;
    // The fallback path: HTTP heartbeats well within the TTL, for three TTLs.
    for _ in 0..12 {
        let (status, _) = server
            .post("/api/online/heartbeat", &[], r#"{"playerId":"fb"}"#)
            .await;
        assert_eq!(status, 200, "the player must still be online");
        tokio::time::sleep(Duration::from_millis(200)).await; // pacing, not waiting for an event
    }
    let (_, rec) = server.get("/api/online/player/fb").await;
    assert_eq!(rec["status"], "online");
    // Heartbeats stop: it goes offline once, after the TTL.
    let offline = expect_event(&mut hooks, "user.offline", "fb").await;
    verify(&offline);
    while let Ok(d) = hooks.try_recv() {
        assert_ne!(
            d.json()["data"]["playerId"],
            "fb",
            "one offline only: {}",
            d.json()
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn webhook_is_retried_after_a_500() {
    let (url, mut hooks) = receiver(&[Answer::Status(500), Answer::Status(503)]).await;
    let server = spawn(with_webhook(&url)).await;
    assert_eq!(
        server
            .post("/api/online/login", &[], r#"{"playerId":"r"}"#)
            .await
            .0,
        200
    );
    let first = expect_event(&mut hooks, "user.online", "r").await;
    let second = expect_event(&mut hooks, "user.online", "r").await;
    let third = expect_event(&mut hooks, "user.online", "r").await;
    for d in [&first, &second, &third] {
        verify(d);
    }
    let id = first.headers["x-activenow-delivery"].clone();
    assert_eq!(
        second.headers["x-activenow-delivery"], id,
        "a retry repeats the id"
    );
    assert_eq!(third.body, first.body, "and the body");
    let (_, metrics) = server.get_text("/metrics").await;
    assert!(
        metrics.contains("activenow_webhook_retries_total 2"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_hung_receiver_never_blocks_presence() {
    let (url, mut hooks) = receiver(&[Answer::Hang; 64]).await;
    let mut s = with_webhook(&url);
    s.webhook_timeout_ms = 60_000;
    s.webhook_queue_capacity = 2;
    let server = spawn(s).await;
    // Every call answers promptly although the receiver never does.
    for i in 0..20 {
        let body = json!({"playerId": format!("h{i}")}).to_string();
        let call = server.post("/api/online/login", &[], &body);
        let (status, _) = tokio::time::timeout(WAIT, call)
            .await
            .expect("login blocked");
        assert_eq!(status, 200);
    }
    next_delivery(&mut hooks).await; // the one the receiver holds
    let (_, list) = server.get("/api/online/players?limit=100").await;
    assert_eq!(list["count"], 20);
    let (_, metrics) = server.get_text("/metrics").await;
    let dropped: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("activenow_webhooks_dropped_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(dropped >= 17, "overflow is dropped and counted: {dropped}");
    server.stop().await;
}
