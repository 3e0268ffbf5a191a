//! The [`Engine`] handle: its shared state, start-up, accessors, and the timing of every
//! backend call. The operations live beside it, one concern per file.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::EngineConfig;
use super::grace_state::{Grace, GraceSender};
use super::observer::TransitionObserver;
use super::registry::{EngineSink, Registry};
use crate::clock;
use crate::error::StoreError;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::model::Room;
use crate::shard::SHARDS;
use crate::store::Backend;

/// A registered observer and the room it watches (`None`: every room).
pub(super) type Observer = (Option<Room>, Arc<dyn TransitionObserver>);

#[derive(Clone)]
pub struct Engine {
    pub(super) shared: Arc<Shared>,
}

pub(super) struct Shared {
    pub(super) config: EngineConfig,
    pub(super) backend: Backend,
    pub(super) hub: Arc<Hub>,
    pub(super) registry: Arc<Registry>,
    /// Serializes hub membership changes with broker (un)subscription per room shard, so a
    /// room's last local leave and a new first join cannot cross.
    pub(super) subscription_locks: Box<[tokio::sync::Mutex<()>]>,
    pub(super) seq: AtomicU64,
    pub(super) last_epoch: AtomicU64,
    pub(super) metrics: Arc<Metrics>,
    pub(super) cancel: CancellationToken,
    /// Registered once at start-up by the adapters that need them; read per transition (an
    /// uncontended read lock).
    /// `None`: every room ([`Engine::observe_all`]).
    pub(super) observers: std::sync::RwLock<Vec<Observer>>,
    /// The leave grace: lingering connections and the task that ends them.
    pub(super) grace: Grace,
    /// Set by [`Engine::begin_shutdown`]: connections closing from now on report
    /// [`Cause::Shutdown`](super::observer::Cause::Shutdown).
    pub(super) shutting_down: std::sync::atomic::AtomicBool,
}

impl Engine {
    /// Starts the engine and its reaper. Call within a tokio runtime.
    pub fn start(config: EngineConfig, backend: Backend) -> Engine {
        let metrics = Arc::new(Metrics::default());
        let hub = Arc::new(Hub::new(metrics.clone()));
        let registry = Arc::new(Registry {
            started: Instant::now(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        });
        let (grace_tx, grace_rx) = tokio::sync::mpsc::unbounded_channel();
        let grace = GraceSender(grace_tx);
        backend.broker.attach(Arc::new(EngineSink {
            hub: hub.clone(),
            registry: registry.clone(),
            grace: grace.clone(),
        }));
        let engine = Engine {
            shared: Arc::new(Shared {
                config,
                backend,
                hub,
                registry,
                subscription_locks: (0..SHARDS).map(|_| tokio::sync::Mutex::new(())).collect(),
                seq: AtomicU64::new(0),
                last_epoch: AtomicU64::new(0),
                metrics,
                cancel: CancellationToken::new(),
                observers: std::sync::RwLock::new(Vec::new()),
                grace: Grace::new(grace),
                shutting_down: std::sync::atomic::AtomicBool::new(false),
            }),
        };
        let reaper = engine.clone();
        tokio::spawn(async move { reaper.run_reaper().await });
        let grace = engine.clone();
        tokio::spawn(async move { grace.run_grace(grace_rx).await });
        engine
    }

    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// `memory` or `redis`.
    pub fn backend_name(&self) -> &'static str {
        self.shared.backend.name
    }

    /// Whether other nodes share this engine's backend (see
    /// [`Backend::shared_across_nodes`]): a service that hears from other nodes runs only
    /// then.
    pub fn shared_across_nodes(&self) -> bool {
        self.shared.backend.shared_across_nodes()
    }

    /// Closes the backend's connections: the last step of shutdown, after every service that
    /// writes to the backend has stopped.
    pub async fn close_backend(&self) {
        self.shared.backend.broker.close().await;
    }

    /// Room messages the broker dropped before this node read them (see
    /// [`crate::store::Broker::lost_messages`]).
    pub fn lost_messages(&self) -> u64 {
        self.shared.backend.broker.lost_messages()
    }

    /// The online-status record store (for the online-status adapter).
    pub fn online_records(&self) -> &Arc<dyn crate::records::OnlineRecords> {
        &self.shared.backend.online
    }

    /// The push-session store (for the session-push adapter).
    pub fn sessions(&self) -> &Arc<dyn crate::sessions::SessionStore> {
        &self.shared.backend.sessions
    }

    /// Connections registered on this node, detached ones (no socket) not included.
    pub fn local_connections(&self) -> u64 {
        self.shared.metrics.connections.get()
    }

    /// Epochs are wall-clock milliseconds, forced to grow on this node.
    pub(super) fn next_epoch(&self) -> u64 {
        let now = clock::now_ms();
        let prev = self
            .shared
            .last_epoch
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(now.max(last + 1))
            })
            .unwrap_or(now);
        now.max(prev + 1)
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.shared.backend
    }

    /// Runs one backend call, counting it (and its latency and failure) in the metrics; for
    /// adapters that call their own stores.
    pub async fn timed<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = std::time::Instant::now();
        let result = call.await;
        let m = &self.shared.metrics;
        m.backend_calls.inc();
        m.backend_latency_us
            .add(started.elapsed().as_micros() as u64);
        if result.is_err() {
            m.backend_errors.inc();
        }
        result
    }
}
