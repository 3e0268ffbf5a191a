//! A webhook receiver the tests run: real HTTP on 127.0.0.1:0, every request's HMAC
//! verified, batches flattened into a stream of events. It can stall its first request until
//! the test releases it, so that events pile up in the sender.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::{mpsc, oneshot};

pub const SECRET: &str = "whsec-rooms";

/// One request the receiver accepted.
pub struct Delivery {
    pub event_header: String,
    pub delivery_id: String,
    pub body: Value,
}

#[derive(Clone)]
struct Shared {
    tx: mpsc::UnboundedSender<Delivery>,
    stall: Arc<Mutex<Option<oneshot::Receiver<()>>>>,
}

fn hex_hmac(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("hmac key");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn hook(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    // A bad signature is refused with 400 (final): the test then misses events and fails.
    if header("x-activenow-signature") != format!("sha256={}", hex_hmac(&body)) {
        return StatusCode::BAD_REQUEST;
    }
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let _ = s.tx.send(Delivery {
        event_header: header("x-activenow-event"),
        delivery_id: header("x-activenow-delivery"),
        body: json,
    });
    let stall = s.stall.lock().unwrap().take();
    if let Some(release) = stall {
        let _ = release.await;
    }
    StatusCode::OK
}

pub struct Receiver {
    pub url: String,
    rx: mpsc::UnboundedReceiver<Delivery>,
    pending: VecDeque<Value>,
    /// Every delivery so far: (X-ActiveNow-Event, delivery id, events in it).
    pub deliveries: Vec<(String, String, usize)>,
    release: Option<oneshot::Sender<()>>,
}

/// How long one expected webhook may take (a node's death takes the reaper lookback).
pub const WAIT: Duration = Duration::from_secs(20);

impl Receiver {
    pub async fn start() -> Receiver {
        Receiver::start_with(false).await
    }

    /// With `stall`, the first request is held (unanswered) until [`Receiver::release`].
    pub async fn start_with(stall: bool) -> Receiver {
        let (tx, rx) = mpsc::unbounded_channel();
        let (release, held) = oneshot::channel();
        let shared = Shared {
            tx,
            stall: Arc::new(Mutex::new(stall.then_some(held))),
        };
        let app = axum::Router::new()
            .route("/hook", post(hook))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            url,
            rx,
            pending: VecDeque::new(),
            deliveries: Vec::new(),
            release: stall.then_some(release),
        }
    }

    /// Answers the stalled first request.
    pub fn release(&mut self) {
        if let Some(r) = self.release.take() {
            let _ = r.send(());
        }
    }

    /// The next event (a batch's events one by one; an online event as its body).
    pub async fn next(&mut self) -> Value {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return e;
            }
            let d = tokio::time::timeout(WAIT, self.rx.recv())
                .await
                .expect("no webhook within the wait")
                .expect("receiver gone");
            let events: Vec<Value> = match d.body.get("events") {
                Some(Value::Array(list)) => {
                    assert_eq!(d.event_header, "events", "a batch's event header");
                    assert!(d.body["time_ms"].as_u64().is_some(), "{}", d.body);
                    list.clone()
                }
                _ => vec![d.body.clone()],
            };
            self.deliveries
                .push((d.event_header, d.delivery_id, events.len()));
            self.pending.extend(events);
        }
    }

    /// Every event up to the `member.joined` of `identity` in `room` (the barrier, not
    /// returned; nor its `room.occupied`).
    pub async fn until_joined(&mut self, room: &str, identity: &str) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let e = self.next().await;
            if e["room"] == room {
                if e["type"] == "member.joined" && e["data"]["identity"] == identity {
                    return out;
                }
                if e["type"] == "room.occupied" {
                    continue;
                }
            }
            out.push(e);
        }
    }
}

/// `type room identity [reason]` of an event, for compact assertions.
pub fn brief(e: &Value) -> String {
    let mut s = format!(
        "{} {} {}",
        e["type"].as_str().unwrap_or("?"),
        e["room"].as_str().unwrap_or("?"),
        e["data"]["identity"].as_str().unwrap_or("?")
    );
    if let Some(r) = e["data"]["reason"].as_str() {
        s.push(' ');
        s.push_str(r);
    }
    s
}

pub fn briefs(events: &[Value]) -> Vec<String> {
    events.iter().map(brief).collect()
}
