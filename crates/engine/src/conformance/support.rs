//! What the conformance checks share: a renderer whose frames tests can read back, waiting
//! for the next frame with a timeout, fresh room names, and the engine settings.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::engine::{Connection, EngineConfig};
use crate::error::EngineError;
use crate::hub::Renderer;
use crate::model::{Identity, PresenceEvent, Room, RoomEvent, State};
use crate::outbox::Outgoing;

/// Renders events as the engine's own serde JSON, so tests can read them back.
pub struct Recorder;

impl Renderer for Recorder {
    fn render(&self, _room: &Room, event: &RoomEvent) -> Option<Bytes> {
        Some(Bytes::from(serde_json::to_vec(event).ok()?))
    }
    fn render_count(&self, _room: &Room, count: u64) -> Option<Bytes> {
        Some(Bytes::from(format!("{{\"count\":{count}}}")))
    }
}

/// What a test connection received.
#[derive(Debug)]
pub enum Seen {
    Event(RoomEvent),
    Count(u64),
    Closed,
}

pub fn recorder() -> Arc<dyn Renderer> {
    Arc::new(Recorder)
}

pub fn engine_config() -> EngineConfig {
    EngineConfig {
        node_id: format!("t{:x}", std::process::id()),
        presence_ttl: Duration::from_secs(30),
        reaper_interval: Duration::from_millis(100),
        reaper_lookback: Duration::from_secs(60),
        send_queue_capacity: 4096,
        ..EngineConfig::default()
    }
}

/// A fresh room name, so suites sharing one store do not see each other.
pub fn room(tag: &str) -> Room {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Room::parse(&format!("{tag}-{}-{n}", std::process::id())).expect("valid room")
}

/// The next thing queued for `conn`, or panics after 5 s.
pub async fn next(conn: &Connection) -> Seen {
    next_within(conn, Duration::from_secs(5)).await
}

/// The next thing queued for `conn`, or panics after `limit`.
pub async fn next_within(conn: &Connection, limit: Duration) -> Seen {
    let out = tokio::time::timeout(limit, conn.outbox().next())
        .await
        .unwrap_or_else(|_| panic!("nothing arrived within {limit:?}"));
    match out {
        Outgoing::Frame(b) => match serde_json::from_slice::<RoomEvent>(&b) {
            Ok(e) => Seen::Event(e),
            Err(_) => {
                let v: serde_json::Value = serde_json::from_slice(&b).expect("json");
                Seen::Count(v["count"].as_u64().expect("count"))
            }
        },
        Outgoing::Close(_) => Seen::Closed,
    }
}

/// The next presence event queued for `conn`, skipping counts.
pub async fn next_presence(conn: &Connection) -> PresenceEvent {
    loop {
        if let Seen::Event(RoomEvent::Presence(e)) = next(conn).await {
            return e;
        }
    }
}

/// Waits until a count equal to `want` arrives.
pub async fn await_count(conn: &Connection, want: u64) {
    loop {
        if let Seen::Count(n) = next(conn).await {
            if n == want {
                return;
            }
        }
    }
}

/// Joins `room` as `who` with no state, rendering with [`recorder`].
pub async fn join(conn: &Connection, room: &Room, who: &str) -> Result<PresenceEvent, EngineError> {
    conn.join(
        room.clone(),
        Identity::new(who),
        State::new(),
        recorder(),
        None,
    )
    .await
}

/// A fresh id, so suites sharing one store do not see each other.
pub fn unique(tag: &str) -> String {
    room(tag).as_str().to_owned()
}
