//! Subscription count events (`pusher_internal:subscription_count`), for the apps that enable
//! them: subscribers of a public or private channel are told the channel's subscription count
//! (sockets, every tab counted, across all nodes) when it changes.
//!
//! The count is the engine's: every join or leave of such a channel is a presence event that
//! every node with subscribers receives, carrying the room's exact count and version. Each
//! node coalesces per channel so that a join storm is not N^2 frames: the first change after a
//! quiet spell is rendered at once (with the event itself, one frame shared by the node's
//! subscribers); later changes within `PUSHER_SUBSCRIPTION_COUNT_INTERVAL_MS` wait, and at the
//! end of the window only the newest count, if it differs from the one sent, is delivered to
//! this node's subscribers ([`Engine::deliver_local`]), which opens the next window. So a
//! socket gets at most one count per channel per interval, and the last count it gets is the
//! channel's count once changes stop. An interval of 0 sends every change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use activenow_engine::{Engine, Publication, Room, RoomEvent};
use serde_json::json;

/// The local publication that carries a coalesced count (see the module doc); the leading
/// control character keeps it out of every client's event namespace.
pub const SUBSCRIPTION_COUNT: &str = "\u{1}pusher:subscription_count";

/// One channel's open window on this node: the count sent when it opened (or at its last
/// flush) and the newest count seen since, each with its room version.
struct Window {
    sent: (u64, u64),
    latest: (u64, u64),
}

pub struct SubscriptionCounts {
    /// Room prefixes (`pusher:{id}:`) of the apps with subscription count events.
    prefixes: Vec<String>,
    interval: Duration,
    engine: Engine,
    windows: Mutex<HashMap<Room, Window>>,
}

impl SubscriptionCounts {
    /// `None` when no app enables the events.
    pub fn new(
        prefixes: Vec<String>,
        interval: Duration,
        engine: &Engine,
    ) -> Option<Arc<SubscriptionCounts>> {
        (!prefixes.is_empty()).then(|| {
            Arc::new(SubscriptionCounts {
                prefixes,
                interval,
                engine: engine.clone(),
                windows: Mutex::new(HashMap::new()),
            })
        })
    }

    /// Whether `room` belongs to an app with subscription count events.
    pub fn enabled(&self, room: &Room) -> bool {
        self.prefixes.iter().any(|p| room.as_str().starts_with(p))
    }

    /// A change of `room`'s count to `count` at `version`, seen by this node; the count to
    /// render with this event, if any (called while the engine delivers: no await, no I/O).
    pub fn changed(self: &Arc<Self>, room: &Room, version: u64, count: u64) -> Option<u64> {
        if self.interval.is_zero() {
            return Some(count);
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Some(count);
        };
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = windows.get_mut(room) {
            if version > w.latest.0 {
                w.latest = (version, count);
            }
            return None;
        }
        windows.insert(
            room.clone(),
            Window {
                sent: (version, count),
                latest: (version, count),
            },
        );
        drop(windows);
        let this = self.clone();
        let room = room.clone();
        runtime.spawn(async move { this.close_windows(room).await });
        Some(count)
    }

    /// Ends `room`'s window every interval: delivers the newest count if it changed (and
    /// keeps the window open), else forgets the room.
    async fn close_windows(self: Arc<Self>, room: Room) {
        loop {
            tokio::time::sleep(self.interval).await;
            let flush = {
                let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
                let Some(w) = windows.get_mut(&room) else {
                    return;
                };
                if w.latest.1 == w.sent.1 {
                    windows.remove(&room);
                    return;
                }
                w.sent = w.latest;
                w.latest
            };
            let (version, count) = flush;
            let publication = Publication {
                event: SUBSCRIPTION_COUNT.into(),
                data: json!({"subscription_count": count, "version": version}),
                from: None,
                ts_ms: activenow_engine::clock::now_ms(),
            };
            self.engine
                .deliver_local(&room, RoomEvent::Publication(publication));
        }
    }

    /// Channels with an open window on this node (tests, and the bound on memory: one entry
    /// per channel that changed within the last interval).
    pub fn open_windows(&self) -> usize {
        self.windows.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use activenow_engine::{Backend, EngineConfig};

    #[tokio::test(start_paused = true)]
    async fn a_storm_is_one_count_per_interval_and_the_last_count_wins() {
        let engine = Engine::start(EngineConfig::default(), Backend::memory());
        let counts = SubscriptionCounts::new(
            vec!["pusher:a:".into()],
            Duration::from_millis(500),
            &engine,
        )
        .unwrap();
        let room = Room::parse("pusher:a:news").unwrap();
        assert!(counts.enabled(&room));
        assert!(!counts.enabled(&Room::parse("pusher:b:news").unwrap()));
        // The first change is rendered at once; the next 99 within the window are not.
        assert_eq!(counts.changed(&room, 1, 1), Some(1));
        for n in 2..=100 {
            assert_eq!(counts.changed(&room, n, n), None);
        }
        // An older version arriving late does not roll the count back.
        assert_eq!(counts.changed(&room, 50, 50), None);
        assert_eq!(counts.open_windows(), 1);
        tokio::time::sleep(Duration::from_millis(501)).await;
        {
            let windows = counts.windows.lock().unwrap();
            assert_eq!(windows[&room].sent, (100, 100));
        }
        // Nothing changed in the next window: the room is forgotten, the next change is
        // rendered at once again.
        tokio::time::sleep(Duration::from_millis(501)).await;
        assert_eq!(counts.open_windows(), 0);
        assert_eq!(counts.changed(&room, 101, 99), Some(99));
    }

    #[tokio::test]
    async fn interval_zero_renders_every_change() {
        let engine = Engine::start(EngineConfig::default(), Backend::memory());
        let counts =
            SubscriptionCounts::new(vec!["pusher:a:".into()], Duration::ZERO, &engine).unwrap();
        let room = Room::parse("pusher:a:news").unwrap();
        assert_eq!(counts.changed(&room, 1, 1), Some(1));
        assert_eq!(counts.changed(&room, 2, 2), Some(2));
        assert_eq!(counts.open_windows(), 0);
    }
}
