//! Cache channels (`cache-`, `private-cache-`, `private-encrypted-cache-`, `presence-cache-`):
//! the last event the HTTP API sent to the channel is kept, and every new subscriber gets it
//! right after `pusher_internal:subscription_succeeded`, or `pusher:cache_miss` when there is
//! none (or it is older than `PUSHER_CACHE_TTL`), as Pusher does.
//!
//! The event is kept in the engine's channel metadata store, so every node (Redis) sees the
//! same last event. Its channel type starts with a control character, which the metadata
//! API of the other protocols refuses (`Room::parse`), so no one reads a private cache
//! channel's event or writes one around this module. Events over
//! `PUSHER_CACHE_MAX_EVENT_BYTES` are delivered but not kept.

use activenow_engine::{
    ChannelKey, MetadataItem, MetadataLimits, MetadataOp, MetadataWrite, Publication,
};
use bytes::Bytes;
use serde_json::{json, Value};

use super::{codec, now_ms, App};
use crate::protocol::pusher::PusherState;

const CHANNEL_TYPE: &str = "\u{1}pusher-cache";
const ITEM: &str = "last";

/// Whether `channel` is a cache channel.
pub(super) fn is_cache(channel: &str) -> bool {
    [
        "cache-",
        "private-cache-",
        "private-encrypted-cache-",
        "presence-cache-",
    ]
    .iter()
    .any(|p| channel.starts_with(p))
}

fn key(app: &App, channel: &str) -> ChannelKey {
    ChannelKey {
        channel_type: CHANNEL_TYPE.into(),
        channel_name: format!("{}:{channel}", app.id),
    }
}

/// Keeps `p` as the channel's last event (when it fits). A failure is logged: the event was
/// delivered, only a later subscriber misses it.
pub(super) async fn keep(app: &PusherState, pusher_app: &App, channel: &str, p: &Publication) {
    let max = app.settings.pusher_cache_max_event_bytes;
    let data = match &p.data {
        Value::String(s) => s.len(),
        other => other.to_string().len(),
    };
    if data > max {
        return;
    }
    let value = json!({"event": p.event, "data": p.data, "ts_ms": p.ts_ms}).to_string();
    let write = MetadataWrite {
        op: MetadataOp::Set,
        items: vec![MetadataItem {
            key: ITEM.into(),
            value: Some(value),
            revision: None,
        }],
        major_revision: None,
        lock_name: None,
        add_timestamp: false,
        add_user_id: false,
        actor: None,
    };
    let limits = MetadataLimits {
        max_items: 1,
        max_key_bytes: ITEM.len(),
        // The event name (at most 200 bytes), the JSON around it and escaping of `data`.
        max_value_bytes: max.saturating_mul(2).saturating_add(1024),
    };
    let key = key(pusher_app, channel);
    if let Err(e) = app.engine.write_metadata(&key, &write, &limits).await {
        tracing::warn!(error = %e, channel, "pusher cache write failed");
    }
}

/// The frame a new subscriber of a cache channel gets: the kept event, or `pusher:cache_miss`
/// (and the app's `cache_miss` webhook).
pub(super) async fn first_frame(app: &PusherState, pusher_app: &App, channel: &str) -> Bytes {
    let kept = match app.engine.metadata(&key(pusher_app, channel)).await {
        Ok(m) => m.items.get(ITEM).map(|e| e.value.clone()),
        Err(e) => {
            // A subscriber that cannot be told the last event is told there is none.
            tracing::warn!(error = %e, channel, "pusher cache read failed");
            None
        }
    };
    let ttl_ms = app.settings.pusher_cache_ttl.saturating_mul(1000);
    let event = kept
        .and_then(|v| serde_json::from_str::<Value>(&v).ok())
        .filter(|v| {
            v["ts_ms"]
                .as_u64()
                .is_some_and(|ts| ts.saturating_add(ttl_ms) > now_ms())
        })
        .and_then(|v| {
            Some(Publication {
                event: v["event"].as_str()?.to_owned(),
                data: v["data"].clone(),
                from: None,
                ts_ms: v["ts_ms"].as_u64()?,
            })
        });
    match event {
        Some(p) => codec::event(channel, &p),
        None => {
            if let Some((_, w)) = app.webhooks.iter().find(|(id, _)| *id == pusher_app.id) {
                crate::services::webhooks::pusher::cache_miss(w, channel);
            }
            codec::cache_miss(channel)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_channels() {
        for yes in [
            "cache-a",
            "private-cache-a",
            "private-encrypted-cache-a",
            "presence-cache-a",
        ] {
            assert!(is_cache(yes), "{yes}");
        }
        for no in ["a-cache-", "private-a", "presence-a", "cachex"] {
            assert!(!is_cache(no), "{no}");
        }
    }
}
