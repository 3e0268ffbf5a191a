//! The one webhook sender: every event (online status, room) is POSTed to `WEBHOOK_URL`.
//!
//! Events wait in a bounded queue (`WEBHOOK_QUEUE_CAPACITY` events) drained by one
//! background sender, so presence never waits for the receiver: a slow or hung receiver only
//! delays later webhooks, and when the queue is full new events are dropped (counted,
//! logged). Requests go out one at a time in the order the events were produced. An online
//! event (`user.online` / `user.offline`) is one request with its own body. Room events are
//! batched: the sender takes the next room event and every room event already waiting behind
//! it, up to `WEBHOOK_BATCH_MAX`, and POSTs `{"time_ms", "events": [...]}` (at idle a batch is
//! one event: it never waits to fill one). Each request is retried with exponential back-off
//! on a network error, a timeout, a 5xx or a 429, up to `WEBHOOK_MAX_ATTEMPTS`, with the same
//! body and the same delivery id. The body is signed:
//! `X-ActiveNow-Signature: sha256=<hex HMAC-SHA256(WEBHOOK_SECRET, raw body)>`.

use std::sync::Arc;
use std::time::Duration;

use activenow_engine::clock;
use activenow_engine::metrics::Counter;
use bytes::{BufMut, Bytes, BytesMut};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use tokio::sync::{mpsc, oneshot};

use super::filter::Filter;
use crate::config::Settings;

pub const SIGNATURE_HEADER: &str = "x-activenow-signature";
pub const EVENT_HEADER: &str = "x-activenow-event";
pub const DELIVERY_HEADER: &str = "x-activenow-delivery";
/// The `X-ActiveNow-Event` of a batch of room events.
pub const BATCH_EVENT: &str = "events";

#[derive(Default)]
pub struct WebhookMetrics {
    /// Events the receiver accepted (2xx).
    pub sent: Counter,
    /// Events given up after the last attempt or a permanent (4xx) refusal.
    pub failed: Counter,
    /// Events dropped because the queue was full.
    pub dropped: Counter,
    /// Requests retried.
    pub retries: Counter,
    /// Batches of room events the receiver accepted.
    pub batches: Counter,
}

/// The JSON body of an online-status webhook.
#[derive(Serialize)]
pub struct Payload<'a> {
    /// Unique per event; retries repeat it, so receivers can drop duplicates.
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// Wall-clock milliseconds of the transition.
    pub timestamp: u64,
    pub data: PayloadData<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadData<'a> {
    pub player_id: &'a str,
    /// Players online after this transition.
    pub online: u64,
}

/// `sha256=<hex>` of the body under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this never fails.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + digest.len() * 2);
    out.push_str("sha256=");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

enum Job {
    /// One request of its own (an online-status event).
    Single {
        id: String,
        kind: &'static str,
        body: Bytes,
    },
    /// One room event's JSON object, sent in a batch.
    Batched(Bytes),
    Flush(oneshot::Sender<()>),
}

/// The sending end; cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    tx: mpsc::Sender<Job>,
    filter: Arc<Filter>,
    pub metrics: Arc<WebhookMetrics>,
}

/// How requests are signed and labelled.
#[derive(Clone)]
pub enum Signing {
    /// `X-ActiveNow-Signature: sha256=<hex>` (absent without a secret), `X-ActiveNow-Event`,
    /// `X-ActiveNow-Delivery`.
    ActiveNow { secret: String },
    /// Pusher's: `X-Pusher-Key: <app key>`, `X-Pusher-Signature: <hex HMAC-SHA256(app
    /// secret, body)>`.
    Pusher { key: String, secret: String },
}

/// Where and how a sender posts (`WEBHOOK_*`, or one Pusher app's webhook).
pub struct Target {
    pub url: String,
    pub signing: Signing,
}

struct Sender {
    client: reqwest::Client,
    url: String,
    signing: Signing,
    attempts: u32,
    backoff: Duration,
    backoff_max: Duration,
    batch_max: usize,
    metrics: Arc<WebhookMetrics>,
}

impl Webhooks {
    /// Starts the sender when `WEBHOOK_URL` is set.
    pub fn start(settings: &Settings) -> Option<Webhooks> {
        if settings.webhook_url.is_empty() {
            return None;
        }
        let target = Target {
            url: settings.webhook_url.clone(),
            signing: Signing::ActiveNow {
                secret: settings.webhook_secret.clone(),
            },
        };
        Webhooks::start_for(
            settings,
            target,
            &settings.webhook_events,
            &settings.webhook_rooms,
        )
    }

    /// Starts a sender to `target` with the `WEBHOOK_*` retry, queue and batch settings and
    /// the given filters.
    pub fn start_for(
        settings: &Settings,
        target: Target,
        events: &str,
        rooms: &str,
    ) -> Option<Webhooks> {
        let filter = match Filter::parse(events, rooms) {
            Ok(f) => f,
            Err((name, reason)) => {
                // `Settings::validate` refuses these at start; a caller that skipped it
                // gets no webhooks rather than wrong ones.
                tracing::error!(
                    setting = name,
                    reason,
                    "invalid webhook filter; webhooks are off"
                );
                return None;
            }
        };
        let client = match reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.webhook_timeout_ms))
            .user_agent(concat!("activenow/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "webhook client unavailable; webhooks are off");
                return None;
            }
        };
        let metrics = Arc::new(WebhookMetrics::default());
        let (tx, rx) = mpsc::channel(settings.webhook_queue_capacity);
        let sender = Sender {
            client,
            url: target.url,
            signing: target.signing,
            attempts: settings.webhook_max_attempts.max(1),
            backoff: Duration::from_millis(settings.webhook_backoff_ms),
            backoff_max: Duration::from_millis(settings.webhook_backoff_max_ms),
            batch_max: settings.webhook_batch_max.max(1),
            metrics: metrics.clone(),
        };
        tokio::spawn(sender.run(rx));
        Some(Webhooks {
            tx,
            filter: Arc::new(filter),
            metrics,
        })
    }

    /// `WEBHOOK_EVENTS` and `WEBHOOK_ROOMS`.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// Queues an online-status event unless `WEBHOOK_EVENTS` leaves it out; never waits.
    /// Dropped (and counted) when the queue is full.
    pub fn enqueue(&self, kind: &'static str, player: &str, online: u64, ts_ms: u64) {
        if !self.filter.wants(kind) {
            return;
        }
        let id = random_id();
        let payload = Payload {
            id: &id,
            kind,
            timestamp: ts_ms,
            data: PayloadData {
                player_id: player,
                online,
            },
        };
        let body = Bytes::from(serde_json::to_vec(&payload).unwrap_or_default());
        if self.tx.try_send(Job::Single { id, kind, body }).is_err() {
            self.metrics.dropped.inc();
            tracing::warn!(event = kind, player, "webhook queue full; event dropped");
        }
    }

    /// Queues one room event (a JSON object; the caller applied the filters); never waits.
    /// Dropped (and counted) when the queue is full.
    pub fn enqueue_batched(&self, event: Bytes) {
        if self.tx.try_send(Job::Batched(event)).is_err() {
            self.metrics.dropped.inc();
            tracing::warn!("webhook queue full; room event dropped");
        }
    }

    /// Waits until every event queued before this call was handled (or `limit` passed).
    pub async fn flush(&self, limit: Duration) {
        let (done, wait) = oneshot::channel();
        let queued = tokio::time::timeout(limit, self.tx.send(Job::Flush(done)));
        if queued.await.is_ok() {
            let _ = tokio::time::timeout(limit, wait).await;
        }
    }
}

/// 128 random bits in hex: event and delivery ids.
pub fn random_id() -> String {
    let b: [u8; 16] = rand::random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `{"time_ms":…,"events":[e1,e2,…]}` from already serialized events.
fn batch_body(time_ms: u64, events: &[Bytes]) -> Bytes {
    let len: usize = events.iter().map(|e| e.len() + 1).sum();
    let mut out = BytesMut::with_capacity(len + 40);
    out.put_slice(format!("{{\"time_ms\":{time_ms},\"events\":[").as_bytes());
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(e);
    }
    out.put_slice(b"]}");
    out.freeze()
}

impl Sender {
    async fn run(self, mut rx: mpsc::Receiver<Job>) {
        // A job read while filling a batch that is not a room event: it goes next.
        let mut held: Option<Job> = None;
        loop {
            let job = match held.take() {
                Some(job) => job,
                None => match rx.recv().await {
                    Some(job) => job,
                    None => return,
                },
            };
            match job {
                Job::Flush(done) => {
                    let _ = done.send(());
                }
                Job::Single { id, kind, body } => {
                    self.deliver(&id, kind, body, 1).await;
                }
                Job::Batched(first) => {
                    let mut batch = vec![first];
                    while batch.len() < self.batch_max {
                        match rx.try_recv() {
                            Ok(Job::Batched(e)) => batch.push(e),
                            Ok(other) => {
                                held = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    let body = batch_body(clock::now_ms(), &batch);
                    if self
                        .deliver(&random_id(), BATCH_EVENT, body, batch.len() as u64)
                        .await
                    {
                        self.metrics.batches.inc();
                    }
                }
            }
        }
    }

    /// Sends one request of `events` events; true when the receiver accepted it.
    async fn deliver(&self, id: &str, kind: &'static str, body: Bytes, events: u64) -> bool {
        let headers: Vec<(&str, String)> = match &self.signing {
            Signing::ActiveNow { secret } => {
                let mut h = vec![
                    (EVENT_HEADER, kind.to_owned()),
                    (DELIVERY_HEADER, id.to_owned()),
                ];
                if !secret.is_empty() {
                    h.push((SIGNATURE_HEADER, sign(secret, &body)));
                }
                h
            }
            Signing::Pusher { key, secret } => {
                let signed = sign(secret, &body);
                let hex = signed.trim_start_matches("sha256=").to_owned();
                vec![("x-pusher-key", key.clone()), ("x-pusher-signature", hex)]
            }
        };
        let mut delay = self.backoff;
        for attempt in 1..=self.attempts {
            let mut req = self
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .body(body.clone());
            for (name, value) in &headers {
                req = req.header(*name, value);
            }
            let retry = match req.send().await {
                Ok(resp) if resp.status().is_success() => {
                    self.metrics.sent.add(events);
                    return true;
                }
                Ok(resp) => {
                    let status = resp.status();
                    let transient = status.is_server_error() || status.as_u16() == 429;
                    tracing::warn!(event = kind, id, %status, attempt, "webhook refused");
                    transient
                }
                Err(e) => {
                    tracing::warn!(event = kind, id, error = %e, attempt, "webhook failed");
                    true
                }
            };
            if !retry || attempt == self.attempts {
                break;
            }
            self.metrics.retries.inc();
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.backoff_max);
        }
        self.metrics.failed.add(events);
        tracing::error!(event = kind, id, events, "webhook given up");
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn batch_body_is_json() {
        let body = batch_body(
            7,
            &[Bytes::from_static(b"{\"a\":1}"), Bytes::from_static(b"{}")],
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"time_ms": 7, "events": [{"a": 1}, {}]})
        );
    }
}
