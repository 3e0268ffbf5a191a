//! What the dashboard shows. A snapshot (rooms busiest first, visitors now and today's peak
//! and distinct count, open sockets per protocol), a ring of samples taken every
//! `STATS_SAMPLE_INTERVAL_MS` (the last hour by default), and one task per node that checks
//! for a changed snapshot every `STATS_PUSH_INTERVAL_MS` while someone watches and pushes it
//! to every open `GET /v1/stats/stream` (Server-Sent Events): N dashboards cost one
//! computation, and nobody polls.
//!
//! Rooms, members and visitors come from the engine, so on Redis they are the cluster's;
//! connections are this node's. On Redis every node also writes its samples to the backend,
//! and the history is merged from all of them (sockets summed per slot).

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use activenow_engine::clock::now_ms;
use activenow_engine::{Room, StatsSample};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::error::http_error;
use crate::host::Host;

use super::history::{merge, Ring, Sample};

/// Rooms listed in a snapshot (busiest first); the rest are counted, not named.
const SNAPSHOT_ROOMS: usize = 50;

/// What the stats read: the engine, settings and socket gauges of the host, and the count of
/// Socket.IO sockets (socketioxide counts those, not the host's gauges).
#[derive(Clone)]
pub struct StatsSources {
    pub host: Host,
    pub socketio_sockets: Arc<dyn Fn() -> usize + Send + Sync>,
}

impl std::ops::Deref for StatsSources {
    type Target = Host;
    fn deref(&self) -> &Host {
        &self.host
    }
}

/// The stats endpoints' state: their sources, the ring, the shared push.
#[derive(Clone)]
pub struct Stats(Arc<StatsInner>);

pub struct StatsInner {
    app: StatsSources,
    // A std mutex: one push per sample interval and one copy per history request; never
    // held across an await.
    ring: Mutex<Ring>,
    /// The latest snapshot as JSON text; every stream holds a receiver.
    latest: watch::Sender<Bytes>,
    streams: AtomicUsize,
}

impl Stats {
    /// Starts the sampler and the pusher (when there is a runtime: tests that only build a
    /// router have none); both stop on server shutdown.
    pub fn start(app: &StatsSources) -> Stats {
        let stats = Stats(Arc::new(StatsInner {
            app: app.clone(),
            ring: Mutex::new(Ring::new(app.settings.stats_history_samples)),
            latest: watch::channel(Bytes::new()).0,
            streams: AtomicUsize::new(0),
        }));
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(
                stats
                    .clone()
                    .sample_every(Duration::from_millis(app.settings.stats_sample_interval_ms)),
            );
            tokio::spawn(
                stats
                    .clone()
                    .push_every(Duration::from_millis(app.settings.stats_push_interval_ms)),
            );
        }
        stats
    }

    async fn sample_every(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.0.app.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = match current(&self.0.app).await {
                Ok(now) => now,
                Err(e) => {
                    tracing::debug!(error = %e, "stats sample skipped");
                    continue;
                }
            };
            let mut sample = now.sample();
            // Aligned to the interval, so that the nodes' samples of one slot line up.
            sample.ts -= sample.ts % every.as_millis().max(1) as u64;
            self.record(sample);
            let shared = StatsSample {
                slot_ms: sample.ts,
                visitors: sample.visitors,
                members: sample.members,
                rooms: sample.rooms,
                connections: sample.connections,
            };
            if let Err(e) = self
                .0
                .app
                .engine
                .record_stats_sample(&shared, self.window_ms())
                .await
            {
                tracing::debug!(error = %e, "sharing the stats sample failed");
            }
        }
    }

    /// How far back the history reaches.
    fn window_ms(&self) -> u64 {
        let s = &self.0.app.settings;
        s.stats_sample_interval_ms
            .saturating_mul(s.stats_history_samples as u64)
    }

    /// The cluster's history when the backend shares one (Redis), else this node's ring.
    /// `(samples, merged)`.
    async fn history(&self) -> (Vec<Sample>, bool) {
        let since = now_ms().saturating_sub(self.window_ms());
        match self.0.app.engine.stats_samples(since).await {
            Ok(Some(shared)) => return (merge(shared), true),
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "reading the shared stats history failed"),
        }
        let local = self.0.ring.lock().map(|r| r.samples()).unwrap_or_default();
        (local, false)
    }

    fn record(&self, s: Sample) {
        if let Ok(mut ring) = self.0.ring.lock() {
            ring.record(s);
        }
    }

    async fn push_every(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = Value::Null;
        loop {
            tokio::select! {
                _ = self.0.app.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if self.0.latest.receiver_count() == 0 {
                last = Value::Null;
                continue;
            }
            let Ok(now) = current(&self.0.app).await else {
                continue;
            };
            let body = now.to_json(false);
            if body != last {
                let text = now.to_json(true).to_string();
                self.0.latest.send_replace(Bytes::from(text));
                last = body;
            }
        }
    }
}

/// What the server holds right now.
struct Current {
    ts: u64,
    backend: &'static str,
    rooms: Vec<(Room, u64)>,
    visitors: u64,
    date: String,
    peak: u64,
    distinct: u64,
    sockets: [(&'static str, u64); 6],
}

impl Current {
    fn sample(&self) -> Sample {
        Sample {
            ts: self.ts,
            visitors: self.visitors,
            members: self.rooms.iter().map(|(_, n)| n).sum(),
            rooms: self.rooms.len() as u64,
            connections: self.sockets.iter().map(|(_, n)| n).sum(),
        }
    }

    /// The snapshot as JSON; without `ts` for comparing two snapshots.
    fn to_json(&self, with_ts: bool) -> Value {
        let rooms: Vec<Value> = self
            .rooms
            .iter()
            .take(SNAPSHOT_ROOMS)
            .map(|(r, n)| json!({"room": r.as_str(), "count": n}))
            .collect();
        let connections: serde_json::Map<String, Value> = self
            .sockets
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        let s = self.sample();
        let mut v = json!({
            "backend": self.backend,
            "rooms": rooms,
            "room_count": s.rooms,
            "members": s.members,
            "visitors": {"now": self.visitors, "date": self.date, "peak": self.peak, "distinct": self.distinct},
            "connections": connections,
            "connections_total": s.connections,
        });
        if with_ts {
            v["ts"] = json!(self.ts);
        }
        v
    }
}

async fn current(app: &StatsSources) -> Result<Current, activenow_engine::EngineError> {
    let mut rooms: Vec<(Room, u64)> = app
        .engine
        .room_counts()
        .await?
        .into_iter()
        .filter(|(room, count)| !room.is_internal() && *count > 0)
        .collect();
    rooms.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let visitors = app.engine.count(&Room::visitors()).await?;
    let (date, day) = app.engine.daily_visitors().await?;
    let g = &app.metrics.sockets;
    Ok(Current {
        ts: now_ms(),
        backend: app.engine.backend_name(),
        rooms,
        visitors,
        date,
        peak: day.max.max(visitors),
        distinct: day.total,
        sockets: [
            ("rooms", g.rooms.get()),
            ("visitors", g.visitors.get()),
            ("channels", g.channels.get()),
            ("online", g.online.get()),
            ("sessions", g.sessions.get()),
            ("socketio", (app.socketio_sockets)() as u64),
        ],
    })
}

/// With `API_KEY` set the stats need `Authorization: Bearer <API_KEY>`; without, they are as
/// open as `/v1/rooms/active`.
fn refused(app: &Host, headers: &HeaderMap) -> Option<Response> {
    if app.settings.api_key.is_empty() {
        return None;
    }
    crate::api_key::check(&app.settings.api_key, headers)
        .err()
        .map(|r| http_error(r.status(), r.code(), r.message()))
}

fn unavailable(e: activenow_engine::EngineError) -> Response {
    http_error(
        StatusCode::SERVICE_UNAVAILABLE,
        crate::close::code::BACKEND_UNAVAILABLE,
        e.to_string(),
    )
}

/// `GET /v1/stats`: the snapshot once.
pub async fn snapshot(State(stats): State<Stats>, headers: HeaderMap) -> Response {
    if let Some(refused) = refused(&stats.0.app, &headers) {
        return refused;
    }
    match current(&stats.0.app).await {
        Ok(now) => Json(now.to_json(true)).into_response(),
        Err(e) => unavailable(e),
    }
}

/// `GET /v1/stats/history`: `{interval_ms, samples: [{ts, visitors, members, rooms,
/// connections}]}`, oldest first.
pub async fn history(State(stats): State<Stats>, headers: HeaderMap) -> Response {
    let app = &stats.0.app;
    if let Some(refused) = refused(app, &headers) {
        return refused;
    }
    let (samples, merged) = stats.history().await;
    Json(json!({
        "interval_ms": app.settings.stats_sample_interval_ms,
        "capacity": app.settings.stats_history_samples,
        "merged": merged,
        "samples": samples,
    }))
    .into_response()
}

/// Releases a stream's place when the client goes away.
struct StreamSlot(Stats);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0 .0.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `GET /v1/stats/stream`: Server-Sent Events, one `snapshot` event now and one on every
/// change. At most `STATS_MAX_STREAMS` per node.
pub async fn stream(State(stats): State<Stats>, headers: HeaderMap) -> Response {
    let app = stats.0.app.clone();
    if let Some(refused) = refused(&app, &headers) {
        return refused;
    }
    let max = app.settings.stats_max_streams;
    if stats.0.streams.fetch_add(1, Ordering::Relaxed) >= max {
        stats.0.streams.fetch_sub(1, Ordering::Relaxed);
        return http_error(
            StatusCode::SERVICE_UNAVAILABLE,
            crate::close::code::TOO_MANY_STREAMS,
            format!("this node serves at most {max} stats streams (STATS_MAX_STREAMS)"),
        );
    }
    let slot = StreamSlot(stats.clone());
    let first = match current(&app).await {
        Ok(now) => Bytes::from(now.to_json(true).to_string()),
        Err(e) => return unavailable(e),
    };
    let mut rx = stats.0.latest.subscribe();
    rx.mark_unchanged();
    let shutdown = app.shutdown.clone();
    let events = futures_util::stream::unfold(
        (Some(first), rx, slot, shutdown),
        |(first, mut rx, slot, shutdown)| async move {
            let body = match first {
                Some(b) => b,
                None => {
                    tokio::select! {
                        _ = shutdown.cancelled() => return None,
                        changed = rx.changed() => changed.ok()?,
                    }
                    rx.borrow_and_update().clone()
                }
            };
            let text = String::from_utf8_lossy(&body).into_owned();
            let event = Event::default().event("snapshot").data(text);
            Some((Ok::<_, Infallible>(event), (None, rx, slot, shutdown)))
        },
    );
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
