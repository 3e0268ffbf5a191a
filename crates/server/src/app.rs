//! The application: shared state, the router, and a server that can be started on any
//! listener (tests bind port 0) and stopped with a token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use activenow_engine::{Backend, Engine, EngineConfig};
use axum::extract::DefaultBodyLimit;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Settings;
use crate::observe::AppMetrics;

use crate::transport::origin::OriginPolicy;

/// Cheap to clone: everything a handler needs.
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

pub struct AppInner {
    pub engine: Engine,
    pub settings: Settings,
    pub origins: OriginPolicy,
    /// Cancelled on SIGINT/SIGTERM: every socket task closes with 1012.
    pub shutdown: CancellationToken,
    /// Every socket task, so shutdown can wait for them (axum does not track upgraded
    /// connections).
    pub sockets: TaskTracker,
    pub metrics: AppMetrics,
    pub activenow: crate::protocol::activenow::Renderers,
    /// The Socket.IO renderer, which also holds the Socket.IO server handle.
    pub socketio: Arc<crate::protocol::socketio::SocketIoRenderer>,
    /// One sender per Pusher app with a `webhook_url` (flushed on shutdown).
    /// Each Pusher app's webhook sender, by app id (apps with a webhook URL only).
    pub pusher_webhooks: Vec<(String, crate::services::webhooks::Webhooks)>,
    /// The webhook sender (`WEBHOOK_URL` set): online-status and room events.
    pub webhooks: Option<crate::services::webhooks::Webhooks>,
    /// The online-status adapter (HTTP heartbeats, ping sockets, webhooks).
    pub online: crate::services::online::Online,
    /// The session-push adapter.
    pub sessions: crate::services::session::Sessions,
    pub channels: crate::protocol::channels::Channels,
    /// Per-IP limits and the trusted proxies (`MAX_CONNECTIONS_PER_IP`, handshake, login and
    /// session-creation rates).
    pub limits: crate::transport::per_ip::IpLimits,
    /// The Pusher protocol's app and renderer.
    pub pusher: crate::protocol::pusher::Pusher,
    /// What the server API's handlers take (they never see the whole `AppState`).
    pub server_api: crate::protocol::server_api::ServerApiState,
}

impl axum::extract::FromRef<AppState> for crate::protocol::server_api::ServerApiState {
    fn from_ref(app: &AppState) -> Self {
        app.server_api.clone()
    }
}

impl std::ops::Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl AppState {
    pub fn new(settings: Settings, backend: Backend) -> AppState {
        let engine = Engine::start(
            EngineConfig {
                node_id: settings.node_id.clone(),
                presence_ttl: settings.presence_ttl(),
                reaper_interval: settings.reaper_interval(),
                reaper_lookback: settings.reaper_lookback(),
                send_queue_capacity: settings.send_queue_capacity,
                send_queue_max: settings.send_queue_max_frames,
                slow_consumer_timeout: settings.slow_consumer_timeout(),
                leave_grace: Duration::from_millis(settings.presence_leave_grace_ms),
                // `Settings::validate` refused an unknown word.
                leave_grace_on: settings.leave_grace_on().unwrap_or_default(),
                leave_grace_max_pending: settings.presence_leave_grace_max_pending,
            },
            backend,
        );
        let webhooks = crate::services::webhooks::Webhooks::start(&settings);
        if let Some(room) = webhooks.as_ref().and_then(|w| {
            crate::services::webhooks::RoomWebhooks::new(
                w,
                crate::protocol::pusher::is_control_room,
            )
        }) {
            engine.observe_all(room);
        }
        let online = crate::services::online::Online::start(&engine, &settings, webhooks.clone());
        let pusher = crate::protocol::pusher::Pusher::new(&settings, &engine);
        let pusher_webhooks = pusher_webhooks(&settings, &pusher);
        if let Some(observer) = crate::services::webhooks::PusherWebhooks::new(
            pusher_webhooks
                .iter()
                .map(|(id, prefix, w)| crate::services::webhooks::AppHooks {
                    prefix: prefix.clone(),
                    webhooks: w.clone(),
                    subscription_counts: pusher
                        .apps
                        .iter()
                        .any(|a| a.id == *id && a.subscription_count_events),
                })
                .collect(),
        ) {
            engine.observe_all(observer);
        }
        let sessions = crate::services::session::Sessions::start(&engine, &settings);
        AppState(Arc::new(AppInner {
            webhooks,
            online,
            sessions,
            engine: engine.clone(),
            origins: OriginPolicy::new(settings.origin_allowlist()),
            channels: crate::protocol::channels::Channels::new(&settings),
            limits: crate::transport::per_ip::IpLimits::new(&settings),
            pusher,
            pusher_webhooks: pusher_webhooks
                .into_iter()
                .map(|(id, _, w)| (id, w))
                .collect(),
            server_api: crate::protocol::server_api::ServerApiState {
                engine: engine.clone(),
                settings: Arc::new(settings.clone()),
            },
            settings,
            shutdown: CancellationToken::new(),
            sockets: TaskTracker::new(),
            metrics: AppMetrics::default(),
            activenow: crate::protocol::activenow::Renderers::default(),
            socketio: Arc::default(),
        }))
    }
}

/// A Pusher-signed sender for each app with a webhook URL, with its id and room prefix.
fn pusher_webhooks(
    settings: &Settings,
    pusher: &crate::protocol::pusher::Pusher,
) -> Vec<(String, String, crate::services::webhooks::Webhooks)> {
    use crate::services::webhooks::{Signing, Target, Webhooks};
    pusher
        .apps
        .iter()
        .filter(|app| !app.webhook_url.is_empty())
        .filter_map(|app| {
            let target = Target {
                url: app.webhook_url.clone(),
                signing: Signing::Pusher {
                    key: app.key.clone(),
                    secret: app.secret.clone(),
                },
            };
            Webhooks::start_for(settings, target, "*", "*")
                .map(|w| (app.id.clone(), app.room_prefix(), w))
        })
        .collect()
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(crate::protocol::activenow::routes())
        .merge(crate::protocol::metadata_http::routes())
        .merge(crate::services::online::routes())
        .merge(crate::services::session::routes())
        .merge(crate::protocol::channels::routes())
        .merge(crate::protocol::pusher::routes())
        .merge(crate::protocol::server_api::routes())
        .merge(crate::observe::routes())
        .merge(crate::pages::routes(&state))
        .layer(crate::protocol::socketio::layer(&state))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::protocol::socketio::sessions::gate,
        ))
        .layer(DefaultBodyLimit::max(
            crate::transport::http_limits::HttpLimits::from_settings(&state.settings)
                .largest_body(),
        ))
        .layer(axum::middleware::from_fn(
            crate::transport::encoding::refuse_lossy,
        ))
        .layer(crate::observe::cors(&state.origins))
        .with_state(state)
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub state: AppState,
    serve: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Serves on `listener` until [`Server::shutdown`].
    pub fn start(listener: TcpListener, state: AppState) -> std::io::Result<Server> {
        let addr = listener.local_addr()?;
        let app = router(state.clone());
        // Our own accept loop: header, idle and body timeouts, per-IP limits (see
        // transport/serve.rs); requests carry `ConnectInfo<SocketAddr>` and `ClientIp`.
        let serve = tokio::spawn(crate::transport::serve::serve(listener, app, state.clone()));
        Ok(Server { addr, state, serve })
    }

    /// Stops accepting, closes every socket with 1012, waits for them, then removes this
    /// node's presence from the backend, all within `grace` whatever the clients do: each
    /// step waits only until one shared deadline, and a socket whose close frame cannot be
    /// written is dropped after `CLOSE_WRITE_TIMEOUT`. The last fifth of the grace (at most
    /// 2 s) is kept for the backend.
    pub async fn shutdown(self, grace: Duration) {
        let start = tokio::time::Instant::now();
        let deadline = start + grace;
        // Sockets closing from here on leave with the reason `shutdown` (room webhooks).
        self.state.engine.begin_shutdown();
        let sockets_by = deadline - (grace / 5).min(Duration::from_secs(2));
        self.state.shutdown.cancel();
        self.state.sockets.close();
        if tokio::time::timeout_at(sockets_by, self.state.sockets.wait())
            .await
            .is_err()
        {
            tracing::warn!("sockets still open after the shutdown grace period");
        }
        // Socket.IO sockets live in socketioxide's tasks: close them (clients see
        // "io server disconnect") and run their disconnect handlers.
        if tokio::time::timeout_at(sockets_by, self.state.socketio.close())
            .await
            .is_err()
        {
            tracing::warn!("socket.io sockets still open after the shutdown grace period");
        }
        let mut serve = self.serve;
        match tokio::time::timeout_at(sockets_by, &mut serve).await {
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "server stopped with an error"),
            Ok(_) => {}
            Err(_) => {
                // Idle keep-alive or half-sent requests: they are dropped, not waited for.
                serve.abort();
                tracing::warn!("HTTP connections still open after the grace period; dropped");
            }
        }
        if tokio::time::timeout_at(deadline, self.state.engine.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("backend cleanup did not finish within the grace period");
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let _ = tokio::time::timeout(left, self.state.online.drain(left)).await;
        for (_, w) in &self.state.pusher_webhooks {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            w.flush(left).await;
        }
        self.state.sessions.stop();
        // Last: the services above may still write to the backend while they drain.
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let _ = tokio::time::timeout(left, self.state.engine.close_backend()).await;
    }
}
