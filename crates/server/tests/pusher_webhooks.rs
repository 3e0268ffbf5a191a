//! Pusher-style webhooks through the Pusher protocol over real sockets, to a receiver that
//! verifies `X-Pusher-Key` and `X-Pusher-Signature` (hex HMAC-SHA256 of the raw body under
//! the app secret, as the `pusher` SDK's `webhook()` helper does): `channel_occupied`,
//! `member_added` once per user (not per tab), `member_removed`, `channel_vacated`, for
//! presence and public channels.

mod common;

use std::time::Duration;

use activenow::protocol::pusher::auth::sign;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{settings, spawn, Client, TestServer};
use serde_json::{json, Value};
use tokio::sync::mpsc;

const KEY: &str = "hook-key";
const SECRET: &str = "hook-secret";

async fn hook(
    State(tx): State<mpsc::UnboundedSender<Value>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    let want = sign(SECRET, &String::from_utf8_lossy(&body));
    if header("x-pusher-key") != KEY || header("x-pusher-signature") != want {
        return StatusCode::UNAUTHORIZED;
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) => {
            let _ = tx.send(v);
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

struct Hooks {
    rx: mpsc::UnboundedReceiver<Value>,
    pending: std::collections::VecDeque<Value>,
}

impl Hooks {
    async fn next(&mut self) -> String {
        loop {
            if let Some(e) = self.pending.pop_front() {
                let mut s = format!(
                    "{} {}",
                    e["name"].as_str().unwrap(),
                    e["channel"].as_str().unwrap()
                );
                if let Some(u) = e["user_id"].as_str() {
                    s.push(' ');
                    s.push_str(u);
                }
                return s;
            }
            let body = tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
                .await
                .expect("a webhook within the wait")
                .expect("receiver alive");
            assert!(body["time_ms"].as_u64().is_some(), "{body}");
            self.pending
                .extend(body["events"].as_array().expect("events").iter().cloned());
        }
    }

    async fn take(&mut self, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        while out.len() < n {
            out.push(self.next().await);
        }
        out
    }
}

async fn receiver() -> (String, Hooks) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (
        url,
        Hooks {
            rx,
            pending: Default::default(),
        },
    )
}

async fn connect(server: &TestServer) -> (Client, String) {
    let mut c = server
        .ws(&format!("/app/{KEY}?protocol=7&client=js&version=8.6.0"))
        .await;
    let v = c
        .until(|v| v["event"] == "pusher:connection_established")
        .await;
    let data: Value = serde_json::from_str(v["data"].as_str().unwrap()).unwrap();
    let sid = data["socket_id"].as_str().unwrap().to_owned();
    (c, sid)
}

async fn subscribe(c: &mut Client, sid: &str, channel: &str, user: Option<&str>) {
    let data = match user {
        Some(user) => {
            let channel_data = json!({"user_id": user, "user_info": {}}).to_string();
            let sig = sign(SECRET, &format!("{sid}:{channel}:{channel_data}"));
            json!({"channel": channel, "auth": format!("{KEY}:{sig}"), "channel_data": channel_data})
        }
        None => json!({"channel": channel}),
    };
    c.send_json(json!({"event": "pusher:subscribe", "data": data}))
        .await;
    c.until(|v| v["event"] == "pusher_internal:subscription_succeeded" && v["channel"] == channel)
        .await;
}

#[tokio::test]
async fn presence_and_public_channels_send_pushers_webhooks() {
    let (url, mut hooks) = receiver().await;
    let server = spawn(activenow::Settings {
        pusher_app_id: "hooks".into(),
        pusher_app_key: KEY.into(),
        pusher_app_secret: SECRET.into(),
        pusher_app_webhook_url: url,
        ..settings()
    })
    .await;

    let (mut alice, sid) = connect(&server).await;
    subscribe(&mut alice, &sid, "presence-room", Some("alice")).await;
    let (mut alice_tab, sid) = connect(&server).await;
    subscribe(&mut alice_tab, &sid, "presence-room", Some("alice")).await;
    let (mut bob, sid) = connect(&server).await;
    subscribe(&mut bob, &sid, "presence-room", Some("bob")).await;
    subscribe(&mut bob, &sid, "news", None).await;
    assert_eq!(
        hooks.take(4).await,
        [
            "channel_occupied presence-room",
            "member_added presence-room alice",
            "member_added presence-room bob",
            "channel_occupied news",
        ]
    );
    // Alice's first tab goes: nothing; her last: member_removed. Bob unsubscribes, closes.
    alice.close().await;
    alice_tab.close().await;
    bob.send_json(json!({"event": "pusher:unsubscribe", "data": {"channel": "presence-room"}}))
        .await;
    bob.close().await;
    assert_eq!(
        hooks.take(4).await,
        [
            "member_removed presence-room alice",
            "member_removed presence-room bob",
            "channel_vacated presence-room",
            "channel_vacated news",
        ]
    );
    server.stop().await;
}

#[test]
fn a_webhook_url_must_be_http() {
    let s = activenow::Settings {
        pusher_app_id: "hooks".into(),
        pusher_app_key: KEY.into(),
        pusher_app_secret: SECRET.into(),
        pusher_app_webhook_url: "ftp://nope".into(),
        ..settings()
    };
    assert!(s.validate().is_err());
}
