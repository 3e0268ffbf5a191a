//! The online-status API and session push across two nodes sharing one backend, through the
//! engine's backend traits only (shared in-memory stores and a broker that brings every
//! message to every node, as the Redis backend does): a player counts and is announced once
//! whichever node it uses, a logout on one node closes its socket on the other, and a push
//! made on one node reaches the session socket on the other.

mod common;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use common::shared::shared_memory_backend;
use common::{settings, spawn_with, Ended, TestServer, WAIT};
use serde_json::{json, Value};
use tokio::sync::mpsc;

async fn hook(State(tx): State<mpsc::UnboundedSender<Value>>, body: Bytes) -> &'static str {
    let _ = tx.send(serde_json::from_slice(&body).unwrap());
    "ok"
}

/// A webhook receiver both nodes post to.
async fn receiver() -> (String, mpsc::UnboundedReceiver<Value>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

async fn two_nodes(webhook: &str) -> (TestServer, TestServer) {
    let backend = shared_memory_backend();
    let node = |id: &str| {
        let mut s = settings();
        s.node_id = id.into();
        s.webhook_url = webhook.into();
        s.api_key = "k".into();
        s.session_expiry_check_ms = 50;
        spawn_with(s, backend.clone())
    };
    (node("node-a").await, node("node-b").await)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("no webhook")
        .unwrap()
}

#[tokio::test]
async fn a_player_is_one_identity_across_nodes() {
    let (url, mut hooks) = receiver().await;
    let (a, b) = two_nodes(&url).await;
    assert_eq!(
        a.post("/api/online/login", &[], r#"{"playerId":"p"}"#)
            .await
            .0,
        200
    );
    let e = next(&mut hooks).await;
    assert_eq!(
        (e["type"].clone(), e["data"]["playerId"].clone()),
        (json!("user.online"), json!("p"))
    );
    // Heartbeats on the other node, and a ping socket there: still one player.
    assert_eq!(
        b.post("/api/online/heartbeat", &[], r#"{"playerId":"p"}"#)
            .await
            .0,
        200
    );
    let mut ws = b.ws("/api/online/ws?playerId=p").await;
    ws.send_json(json!({"type": "ping"})).await;
    ws.expect_type("pong").await;
    for node in [&a, &b] {
        let (_, list) = node.get("/api/online/players").await;
        assert_eq!(
            (list["count"].clone(), list["total"].clone()),
            (json!(1), json!(1))
        );
    }
    // A logout on A closes the socket on B, and the player goes offline once.
    assert_eq!(
        a.post("/api/online/logout", &[], r#"{"playerId":"p"}"#)
            .await
            .0,
        200
    );
    assert_eq!(ws.ended().await, Ended::Closed(Some(1000)));
    let e = next(&mut hooks).await;
    assert_eq!(
        (e["type"].clone(), e["data"]["playerId"].clone()),
        (json!("user.offline"), json!("p"))
    );
    assert_eq!(e["data"]["online"], 0);
    assert_eq!(b.get("/api/online/player/p").await.1["status"], "offline");
    // Fences: each node sends in order, so once both fences arrived nothing else is pending.
    for (node, id) in [(&a, "fa"), (&b, "fb")] {
        let body = json!({"playerId": id}).to_string();
        assert_eq!(node.post("/api/online/login", &[], &body).await.0, 200);
    }
    let mut fences = 0;
    while fences < 2 {
        let e = next(&mut hooks).await;
        assert_ne!(
            e["data"]["playerId"], "p",
            "one online and one offline only: {e}"
        );
        fences += 1;
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_push_on_one_node_reaches_the_socket_on_the_other() {
    let (url, _hooks) = receiver().await;
    let (a, b) = two_nodes(&url).await;
    let (_, body) = a.post("/v1/qr-login/generate", &[], "{}").await;
    let id = body["session_id"].as_str().unwrap().to_owned();
    let mut ws = b.ws(&format!("/v1/ws/qr/{id}")).await;
    assert_eq!(ws.next_json().await["status"], "connected");
    let auth = [("authorization", "Bearer k")];
    let confirm = json!({"session_id": id, "web_token": "w"}).to_string();
    assert_eq!(a.post("/v1/qr-login/confirm", &auth, &confirm).await.0, 200);
    assert_eq!(ws.next_json().await["web_token"], "w");
    assert_eq!(ws.ended().await, Ended::Closed(Some(1000)));
    assert_eq!(b.post("/v1/qr-login/confirm", &auth, &confirm).await.0, 400);
    // Expiry: both nodes run the pass on the shared store; the socket hears it once.
    let (_, body) = a.post("/v1/sessions", &[], r#"{"ttl_secs":1}"#).await;
    let id = body["session_id"].as_str().unwrap().to_owned();
    let mut ws = b.ws(&format!("/v1/ws/session/{id}")).await;
    assert_eq!(ws.next_json().await["status"], "connected");
    assert_eq!(ws.next_json().await["status"], "expired");
    assert_eq!(ws.ended().await, Ended::Closed(Some(1000)));
    a.stop().await;
    b.stop().await;
}
