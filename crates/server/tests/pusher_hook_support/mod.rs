//! The Pusher webhook receiver the Pusher webhook suites share: it verifies `X-Pusher-Key`
//! and `X-Pusher-Signature` (hex HMAC-SHA256 of the raw body under the app secret) and hands
//! each event over as `"<name> <channel>[ <user_id>][ <subscription_count>]"`.
#![allow(dead_code)]

use std::time::Duration;

use activenow::protocol::pusher::auth::sign;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;
use tokio::sync::mpsc;

pub const KEY: &str = "hook-key";
pub const SECRET: &str = "hook-secret";

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

pub struct Hooks {
    rx: mpsc::UnboundedReceiver<Value>,
    pending: std::collections::VecDeque<Value>,
}

impl Hooks {
    /// The next event as sent (one of a batch's `events`).
    pub async fn next_event(&mut self) -> Value {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return e;
            }
            let body = tokio::time::timeout(Duration::from_secs(20), self.rx.recv())
                .await
                .expect("a webhook within the wait")
                .expect("receiver alive");
            assert!(body["time_ms"].as_u64().is_some(), "{body}");
            self.pending
                .extend(body["events"].as_array().expect("events").iter().cloned());
        }
    }

    /// The next event as `"<name> <channel>[ <user_id>][ <subscription_count>]"`.
    pub async fn next(&mut self) -> String {
        let e = self.next_event().await;
        let mut s = format!(
            "{} {}",
            e["name"].as_str().unwrap(),
            e["channel"].as_str().unwrap()
        );
        if let Some(u) = e["user_id"].as_str() {
            s.push(' ');
            s.push_str(u);
        }
        if let Some(n) = e["subscription_count"].as_u64() {
            s.push_str(&format!(" {n}"));
        }
        s
    }

    pub async fn take(&mut self, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        while out.len() < n {
            out.push(self.next().await);
        }
        out
    }
}

pub async fn receiver() -> (String, Hooks) {
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
