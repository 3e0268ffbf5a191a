//! Outgoing webhooks: the one signed, retried, queued sender to `WEBHOOK_URL`
//! ([`sender`]), the `WEBHOOK_EVENTS` / `WEBHOOK_ROOMS` filters ([`filter`]) and the room
//! webhooks ([`room`]), an engine observer of every room. The online-status service sends
//! its `user.online` / `user.offline` events through the same sender; each Pusher app with a
//! `webhook_url` gets a sender of its own with Pusher's signature ([`pusher`]).
//!
//! Nothing here takes the application state: the app starts the sender and hands it to the
//! services that send.

pub mod filter;
pub mod pusher;
pub mod room;
pub mod sender;

pub use filter::Filter;
pub use pusher::{AppHooks, PusherWebhooks};
pub use room::RoomWebhooks;
pub use sender::{sign, Signing, Target, WebhookMetrics, Webhooks};

use crate::metrics::WriteMetrics;

impl WriteMetrics for Webhooks {
    fn write_metrics(&self, out: &mut String) {
        write_metrics(&self.metrics, out);
    }
}

/// Appends the sender's Prometheus lines.
pub fn write_metrics(w: &WebhookMetrics, out: &mut String) {
    let mut line = |name: &str, help: &str, value: u64| {
        out.push_str(&format!(
            "# HELP activenow_{name} {help}\n# TYPE activenow_{name} counter\nactivenow_{name} {value}\n"
        ));
    };
    line(
        "webhooks_sent_total",
        "Webhook events the receiver accepted.",
        w.sent.get(),
    );
    line(
        "webhooks_failed_total",
        "Webhook events given up after retries or a 4xx.",
        w.failed.get(),
    );
    line(
        "webhooks_dropped_total",
        "Webhook events dropped (queue full).",
        w.dropped.get(),
    );
    line(
        "webhook_retries_total",
        "Webhook attempts retried.",
        w.retries.get(),
    );
    line(
        "webhook_batches_total",
        "Batches of room events the receiver accepted.",
        w.batches.get(),
    );
}
