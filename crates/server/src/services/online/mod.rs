//! The online-status API (seed 3, SPEC §7): HTTP login / heartbeat / logout / list / lookup,
//! the ping socket `GET /api/online/ws`, and `user.online` / `user.offline` webhooks.
//!
//! A player is one identity in the engine's internal room `online`: present through its HTTP
//! heartbeat connection (one per player per node, `Liveness::Heartbeat { ttl: ONLINE_TTL }`),
//! its ping sockets, or both, counting once. The record store ([`OnlineRecords`]) keeps what
//! the API reports (login time, last heartbeat, ip, status, logout time); status changes are
//! atomic there. Webhooks follow the identity-level transitions this node's store calls
//! produced (an engine [`TransitionObserver`]), so each is sent by exactly one node.

pub mod http;
mod local;
mod socket;

use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicU64, Ordering};

use activenow_engine::metrics::Counter;
use activenow_engine::{
    clock, Cause, Engine, EngineError, EventKind, Identity, Liveness, OnlineRecord, OnlineRecords,
    PresenceEvent, Publication, Renderer, Room, RoomEvent, State, StoreError, TransitionObserver,
};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::host::Host;
use crate::metrics::WriteMetrics;
use crate::services::webhooks::Webhooks;
use local::Local;

/// What the online-status handlers take: the host and the service.
#[derive(Clone)]
pub struct OnlineState {
    pub host: Host,
    pub online: Online,
}

impl std::ops::Deref for OnlineState {
    type Target = Host;
    fn deref(&self) -> &Host {
        &self.host
    }
}

/// The routes, for any app state this adapter's state can be taken from.
pub fn routes<S>() -> Router<S>
where
    OnlineState: axum::extract::FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/online/login", post(http::login))
        .route("/api/online/heartbeat", post(http::heartbeat))
        .route("/api/online/logout", post(http::logout))
        .route("/api/online/players", get(http::list))
        .route("/api/online/player/{player_id}", get(http::player))
        .route("/api/online/players/{player_id}", get(http::player))
        .route("/api/online/ws", get(socket::upgrade))
}

/// Presence in the online room is never broadcast to its members (they are HTTP connections
/// and ping sockets that want no events): nothing is rendered, so a transition costs nothing
/// per member.
struct Silent;

impl Renderer for Silent {
    fn render(&self, _room: &Room, _event: &RoomEvent) -> Option<Bytes> {
        None
    }
}

/// Logouts made on one node reach the others through this room: each node has one member
/// listening, which drops its own connections of the player.
struct Control;

const KICK: &str = "kick";

impl Renderer for Control {
    fn render(&self, _room: &Room, event: &RoomEvent) -> Option<Bytes> {
        let RoomEvent::Publication(p) = event else {
            return None;
        };
        if p.event != KICK {
            return None;
        }
        let from = p.from.as_ref().map_or("", |f| f.as_str());
        serde_json::to_vec(&(from, &p.data)).ok().map(Bytes::from)
    }
}

#[derive(Default)]
pub struct OnlineMetrics {
    /// Ping sockets open on this node (as of the last tick).
    pub sockets: AtomicU64,
    /// Transitions dropped because the event queue was full.
    pub events_dropped: Counter,
    pub ping_timeouts: Counter,
}

/// Cheap to clone: the adapter's state.
#[derive(Clone)]
pub struct Online(Arc<Inner>);

pub struct Inner {
    engine: Engine,
    records: Arc<dyn OnlineRecords>,
    room: Room,
    control: Room,
    node: Identity,
    silent: Arc<dyn Renderer>,
    local: Local,
    ttl: Duration,
    retain_ms: u64,
    webhooks: Option<Webhooks>,
    events: mpsc::Sender<Event>,
    pub metrics: OnlineMetrics,
    stop: CancellationToken,
}

impl std::ops::Deref for Online {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

enum Event {
    Transition(EventKind, Identity, u64, u64),
    Flush(oneshot::Sender<()>),
}

/// Queues this node's identity-level transitions of the online room.
struct Observer {
    events: mpsc::Sender<Event>,
    online: std::sync::Weak<Inner>,
}

impl TransitionObserver for Observer {
    fn produced(&self, _room: &Room, t: &PresenceEvent, _cause: Cause) {
        if !t.identity_changed || t.kind == EventKind::Update {
            return;
        }
        let event = Event::Transition(t.kind, t.member.identity.clone(), t.count, t.ts_ms);
        if self.events.try_send(event).is_err() {
            if let Some(online) = self.online.upgrade() {
                online.metrics.events_dropped.inc();
            }
            tracing::warn!(player = %t.member.identity, "online event queue full; transition dropped");
        }
    }
}

impl Online {
    /// Starts the adapter's background tasks: transitions -> records and webhooks, the tick
    /// (batched ping refreshes, sweeping expired HTTP connections, purging old records) and the
    /// cross-node logout listener.
    pub fn start(engine: &Engine, settings: &Settings, webhooks: Option<Webhooks>) -> Online {
        let (tx, rx) = mpsc::channel(settings.online_event_queue);
        engine
            .online_records()
            .set_offline_cap(settings.online_max_offline_records);
        let online = Online(Arc::new(Inner {
            engine: engine.clone(),
            records: engine.online_records().clone(),
            room: Room::internal("online"),
            control: Room::internal("online-control"),
            node: Identity::new(&settings.node_id),
            silent: Arc::new(Silent),
            local: Local::default(),
            ttl: settings.online_ttl(),
            retain_ms: settings.online_record_retention.saturating_mul(1000),
            webhooks,
            events: tx.clone(),
            metrics: OnlineMetrics::default(),
            stop: CancellationToken::new(),
        }));
        engine.observe(
            online.room.clone(),
            Arc::new(Observer {
                events: tx,
                online: Arc::downgrade(&online.0),
            }),
        );
        tokio::spawn(online.clone().run_events(rx));
        tokio::spawn(online.clone().run_tick(settings.reaper_interval()));
        // A single-node backend has no other node to hear logouts from.
        if engine.shared_across_nodes() {
            tokio::spawn(online.clone().run_control());
        }
        online
    }

    /// After the engine removed this node's presence: records the last transitions, sends
    /// the webhooks still queued (within `grace`) and stops the tasks.
    pub async fn drain(&self, grace: Duration) {
        let (done, wait) = oneshot::channel();
        let queued = tokio::time::timeout(grace, self.events.send(Event::Flush(done)));
        if matches!(queued.await, Ok(Ok(()))) {
            let _ = tokio::time::timeout(grace, wait).await;
        }
        if let Some(w) = &self.webhooks {
            w.flush(grace).await;
        }
        self.stop.cancel();
    }

    async fn timed<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.engine.timed(call).await
    }

    /// Keeps the player present through this node's HTTP connection: refreshes it, or joins a
    /// new one (first heartbeat here, or a ping socket handing over).
    async fn refresh_http(&self, player: &Identity) -> Result<(), EngineError> {
        if let Some(conn) = self.local.http(player) {
            return conn.heartbeat().await;
        }
        // Not a socket: it must not use MAX_CONNECTIONS (ONLINE_MAX_PLAYERS bounds logins).
        let conn = self
            .engine
            .connect_detached(Liveness::Heartbeat { ttl: self.ttl });
        conn.join(
            self.room.clone(),
            player.clone(),
            State::new(),
            self.silent.clone(),
            None,
        )
        .await?;
        if let Some(old) = self.local.set_http(player, Arc::new(conn)) {
            local::release(old).await;
        }
        Ok(())
    }

    /// Marks the player offline and drops its connections on every node. `None` when it was
    /// not online.
    async fn logout(&self, player: &Identity) -> Result<Option<OnlineRecord>, StoreError> {
        let record = self
            .timed(self.records.logout(player, clock::now_ms(), self.retain_ms))
            .await?;
        if record.is_some() {
            self.kick_local(player).await;
            let kick = Publication {
                event: KICK.into(),
                data: serde_json::Value::String(player.as_str().to_owned()),
                from: Some(self.node.clone()),
                ts_ms: clock::now_ms(),
            };
            if let Err(e) = self.engine.publish(&self.control, kick, None).await {
                tracing::warn!(error = %e, "logout could not reach the other nodes");
            }
        }
        Ok(record)
    }

    async fn kick_local(&self, player: &Identity) {
        if let Some(conn) = self.local.kick(player) {
            let _ = conn.leave(&self.room).await;
            local::release(conn).await;
        }
    }

    async fn run_events(self, mut rx: mpsc::Receiver<Event>) {
        loop {
            let event = tokio::select! {
                _ = self.stop.cancelled() => return,
                e = rx.recv() => match e { Some(e) => e, None => return },
            };
            match event {
                Event::Flush(done) => {
                    let _ = done.send(());
                }
                Event::Transition(kind, player, online, ts) => {
                    let name = if kind == EventKind::Join {
                        "user.online"
                    } else {
                        // A presence expiry (or this node going away): the record goes
                        // offline unless a heartbeat came after the leave.
                        let expire =
                            self.records
                                .expire(&player, ts, clock::now_ms(), self.retain_ms);
                        if let Err(e) = self.timed(expire).await {
                            tracing::warn!(error = %e, %player, "marking a player offline failed");
                        }
                        "user.offline"
                    };
                    if let Some(w) = &self.webhooks {
                        w.enqueue(name, player.as_str(), online, ts);
                    }
                }
            }
        }
    }

    async fn run_tick(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let (pinged, expired, sockets) = self.local.tick();
            self.metrics.sockets.store(sockets, Ordering::Relaxed);
            let now = clock::now_ms();
            if !pinged.is_empty() {
                if let Err(e) = self.timed(self.records.touch(&pinged, now)).await {
                    tracing::warn!(error = %e, "refreshing pinged players failed");
                }
            }
            for conn in expired {
                local::release(conn).await;
            }
            if let Err(e) = self.timed(self.records.purge(now)).await {
                tracing::warn!(error = %e, "purging old online records failed");
            }
        }
    }

    /// Listens for logouts made on other nodes.
    async fn run_control(self) {
        let renderer: Arc<dyn Renderer> = Arc::new(Control);
        while !self.stop.is_cancelled() {
            // A listener, not a socket: it must not take a place of MAX_CONNECTIONS.
            let conn = self.engine.connect_detached(Liveness::Socket);
            let joined = conn
                .join(
                    self.control.clone(),
                    self.node.clone(),
                    State::new(),
                    renderer.clone(),
                    None,
                )
                .await;
            if let Err(e) = joined {
                tracing::warn!(error = %e, "logout listener cannot join; retrying");
                conn.disconnect().await;
                tokio::select! {
                    _ = self.stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
            loop {
                let out = tokio::select! {
                    _ = self.stop.cancelled() => break,
                    out = conn.outbox().next() => out,
                };
                // A closing outbox (too many kicks at once): rejoin with a fresh one.
                let activenow_engine::Outgoing::Frame(frame) = out else {
                    break;
                };
                if let Ok((from, player)) = serde_json::from_slice::<(String, String)>(&frame) {
                    if from != self.node.as_str() {
                        self.kick_local(&Identity::new(&player)).await;
                    }
                }
            }
            conn.disconnect().await;
        }
    }
}

/// Appends this adapter's Prometheus lines.
impl WriteMetrics for Online {
    fn write_metrics(&self, out: &mut String) {
        let m = &self.metrics;
        let mut line = |name: &str, kind: &str, help: &str, value: u64| {
            out.push_str(&format!(
            "# HELP activenow_{name} {help}\n# TYPE activenow_{name} {kind}\nactivenow_{name} {value}\n"
        ));
        };
        line(
            "online_sockets",
            "gauge",
            "Online-status ping sockets on this node.",
            m.sockets.load(Ordering::Relaxed),
        );
        line(
            "online_ping_timeouts_total",
            "counter",
            "Ping sockets closed for silence (player logged out).",
            m.ping_timeouts.get(),
        );
        line(
            "online_events_dropped_total",
            "counter",
            "Online transitions dropped (event queue full).",
            m.events_dropped.get(),
        );
    }
}
