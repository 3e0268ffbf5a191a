//! [`RedisBroker`]: room messages between nodes over Redis pub/sub.
//!
//! One channel per room, carrying the engine's [`RoomMessage`] as JSON (an update's message
//! is published by the update script itself, built around [`update_message_parts`]). With Redis 7 or later
//! the channel is *sharded* (`SPUBLISH`/`SSUBSCRIBE`): in a cluster a message only travels to
//! the shard that owns the room's slot instead of being broadcast to every shard; older
//! servers get plain `PUBLISH`/`SUBSCRIBE`. Subscribing waits for the server's confirmation,
//! so a message published after `subscribe` returns reaches this node. The subscriber client
//! re-subscribes every channel after a reconnection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use activenow_engine::store::{Broker, MessageSink};
use activenow_engine::{Room, RoomMessage, StoreError};
use async_trait::async_trait;
use fred::clients::{Client, SubscriberClient};
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use crate::error::store_error;
use crate::keys::Keys;

pub struct RedisBroker {
    publisher: Client,
    subscriber: SubscriberClient,
    keys: Keys,
    sharded: bool,
    sink: OnceLock<Arc<dyn MessageSink>>,
    /// Messages dropped because this node read its pub/sub stream too slowly.
    lost: Arc<AtomicU64>,
    /// The presence store's lost-state flag: set when messages were dropped, so the engine
    /// re-asserts and its sockets get the rooms' counts again (their missed events are gone).
    lost_state: Arc<AtomicBool>,
    /// Set on close: stops the cluster topology follower (`topology.rs`).
    closing: watch::Sender<bool>,
}

impl RedisBroker {
    pub(crate) fn new(
        publisher: Client,
        subscriber: SubscriberClient,
        keys: Keys,
        sharded: bool,
        closing: watch::Sender<bool>,
        lost_state: Arc<AtomicBool>,
    ) -> RedisBroker {
        RedisBroker {
            publisher,
            subscriber,
            keys,
            sharded,
            sink: OnceLock::new(),
            lost: Arc::default(),
            lost_state,
            closing,
        }
    }
}

/// Subscribes again every channel the subscriber tracks (fred's own `resubscribe_all` gives up
/// when there is no plain channel). Sharded channels go by slot: one `SSUBSCRIBE` may only
/// name channels of one slot.
pub(crate) async fn resubscribe(
    subscriber: &SubscriberClient,
    sharded: bool,
) -> Result<(), fred::error::Error> {
    if !sharded {
        let channels: Vec<String> = subscriber
            .tracked_channels()
            .iter()
            .map(|c| c.to_string())
            .collect();
        if !channels.is_empty() {
            subscriber.subscribe(channels).await?;
        }
        return Ok(());
    }
    let mut by_slot: HashMap<u16, Vec<String>> = HashMap::new();
    for c in subscriber.tracked_shard_channels() {
        by_slot
            .entry(fred::util::redis_keyslot(c.as_bytes()))
            .or_default()
            .push(c.to_string());
    }
    for channels in by_slot.into_values() {
        subscriber.ssubscribe(channels).await?;
    }
    Ok(())
}

/// The JSON text of an update's [`RoomMessage`] before the member's `conn` value and after
/// its `version` value: `lua/update.lua` puts the member, `identity_changed`, `count` and
/// `version` between them and publishes the message itself. What subscribers receive is the
/// same `RoomMessage` [`RedisBroker::publish`] would have sent (the field order of its
/// serialization, state keys in any order); `tests/update_publish.rs` decodes it.
pub(crate) fn update_message_parts(room: &Room, ts_ms: u64) -> (String, String) {
    let room = serde_json::Value::from(room.as_str());
    (
        format!(r#"{{"room":{room},"event":{{"Presence":{{"kind":"update","member":{{"conn":"#),
        format!(r#","ts_ms":{ts_ms}}}}}}}"#),
    )
}

#[async_trait]
impl Broker for RedisBroker {
    fn attach(&self, sink: Arc<dyn MessageSink>) {
        if self.sink.set(sink.clone()).is_err() {
            return;
        }
        let mut rx = self.subscriber.message_rx();
        let lost = self.lost.clone();
        let lost_state = self.lost_state.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(message) => {
                        let Some(bytes) = message.value.as_bytes() else {
                            continue;
                        };
                        match serde_json::from_slice::<RoomMessage>(bytes) {
                            Ok(msg) => sink.deliver(&msg),
                            Err(e) => tracing::warn!(error = %e, "undecodable room message"),
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        lost.fetch_add(n, Ordering::Relaxed);
                        lost_state.store(true, Ordering::Relaxed);
                        tracing::warn!(
                            lost = n,
                            "room messages dropped: this node fell behind; re-asserting"
                        )
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }

    async fn subscribe(&self, room: &Room) -> Result<(), StoreError> {
        let channel = self.keys.channel(room);
        let result = if self.sharded {
            self.subscriber.ssubscribe(channel).await
        } else {
            self.subscriber.subscribe(channel).await
        };
        result.map_err(store_error)
    }

    async fn unsubscribe(&self, room: &Room) -> Result<(), StoreError> {
        let channel = self.keys.channel(room);
        let result = if self.sharded {
            self.subscriber.sunsubscribe(channel).await
        } else {
            self.subscriber.unsubscribe(channel).await
        };
        result.map_err(store_error)
    }

    async fn publish(&self, msg: &RoomMessage) -> Result<(), StoreError> {
        let channel = self.keys.channel(&msg.room);
        let payload = serde_json::to_vec(msg)
            .map_err(|e| StoreError::Protocol(format!("encoding a room message: {e}")))?;
        let result = if self.sharded {
            self.publisher.spublish::<i64, _, _>(channel, payload).await
        } else {
            self.publisher.publish::<i64, _, _>(channel, payload).await
        };
        result.map(|_| ()).map_err(store_error)
    }

    fn shared_across_nodes(&self) -> bool {
        true
    }

    fn lost_messages(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Quits both clients; the command client is the one every Redis store shares.
    async fn close(&self) {
        self.closing.send_replace(true);
        if let Err(e) = self.subscriber.quit().await {
            tracing::debug!(error = %e, "closing the Redis subscriber");
        }
        if let Err(e) = self.publisher.quit().await {
            tracing::debug!(error = %e, "closing the Redis client");
        }
    }
}
