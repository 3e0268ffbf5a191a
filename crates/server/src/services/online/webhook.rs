//! Webhooks: `user.online` / `user.offline` events POSTed to `WEBHOOK_URL`.
//!
//! Events wait in a bounded queue drained by one background sender, so presence never waits
//! for the receiver: a slow or hung receiver only delays later webhooks, and when the queue is
//! full new events are dropped (counted, logged). Events are sent one at a time in the order
//! they were produced; each is retried with exponential back-off on a network error, a
//! timeout, a 5xx or a 429, up to `WEBHOOK_MAX_ATTEMPTS`. The body is signed:
//! `X-ActiveNow-Signature: sha256=<hex HMAC-SHA256(WEBHOOK_SECRET, raw body)>`.

use std::sync::Arc;
use std::time::Duration;

use activenow_engine::metrics::Counter;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use tokio::sync::{mpsc, oneshot};

use crate::config::Settings;

pub const SIGNATURE_HEADER: &str = "x-activenow-signature";
pub const EVENT_HEADER: &str = "x-activenow-event";
pub const DELIVERY_HEADER: &str = "x-activenow-delivery";

#[derive(Default)]
pub struct WebhookMetrics {
    /// Events the receiver accepted (2xx).
    pub sent: Counter,
    /// Events given up after the last attempt or a permanent (4xx) refusal.
    pub failed: Counter,
    /// Events dropped because the queue was full.
    pub dropped: Counter,
    pub retries: Counter,
}

/// The JSON body of every webhook.
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
    Send {
        id: String,
        kind: &'static str,
        body: Bytes,
    },
    Flush(oneshot::Sender<()>),
}

/// The sending end; cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    tx: mpsc::Sender<Job>,
    pub metrics: Arc<WebhookMetrics>,
}

struct Sender {
    client: reqwest::Client,
    url: String,
    secret: String,
    attempts: u32,
    backoff: Duration,
    backoff_max: Duration,
    metrics: Arc<WebhookMetrics>,
}

impl Webhooks {
    /// Starts the sender when `WEBHOOK_URL` is set.
    pub fn start(settings: &Settings) -> Option<Webhooks> {
        if settings.webhook_url.is_empty() {
            return None;
        }
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
            url: settings.webhook_url.clone(),
            secret: settings.webhook_secret.clone(),
            attempts: settings.webhook_max_attempts.max(1),
            backoff: Duration::from_millis(settings.webhook_backoff_ms),
            backoff_max: Duration::from_millis(settings.webhook_backoff_max_ms),
            metrics: metrics.clone(),
        };
        tokio::spawn(sender.run(rx));
        Some(Webhooks { tx, metrics })
    }

    /// Queues an event; never waits. Dropped (and counted) when the queue is full.
    pub fn enqueue(&self, kind: &'static str, player: &str, online: u64, ts_ms: u64) {
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
        if self.tx.try_send(Job::Send { id, kind, body }).is_err() {
            self.metrics.dropped.inc();
            tracing::warn!(event = kind, player, "webhook queue full; event dropped");
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

fn random_id() -> String {
    let b: [u8; 16] = rand::random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Sender {
    async fn run(self, mut rx: mpsc::Receiver<Job>) {
        while let Some(job) = rx.recv().await {
            match job {
                Job::Flush(done) => {
                    let _ = done.send(());
                }
                Job::Send { id, kind, body } => self.deliver(&id, kind, body).await,
            }
        }
    }

    async fn deliver(&self, id: &str, kind: &'static str, body: Bytes) {
        let signature = (!self.secret.is_empty()).then(|| sign(&self.secret, &body));
        let mut delay = self.backoff;
        for attempt in 1..=self.attempts {
            let mut req = self
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .header(EVENT_HEADER, kind)
                .header(DELIVERY_HEADER, id)
                .body(body.clone());
            if let Some(sig) = &signature {
                req = req.header(SIGNATURE_HEADER, sig);
            }
            let retry = match req.send().await {
                Ok(resp) if resp.status().is_success() => {
                    self.metrics.sent.inc();
                    return;
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
        self.metrics.failed.inc();
        tracing::error!(event = kind, id, "webhook given up");
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
}
