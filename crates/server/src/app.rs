//! The application: the one file that knows every protocol and service. It builds their
//! states around one [`Host`], hands each handler its own state by `FromRef`, registers the
//! `/metrics` lines of each part, merges the routes, and runs a server that can be started
//! on any listener (tests bind port 0) and stopped with a token. Adding a protocol touches
//! this file only: its state in [`AppInner`], a line of `taken_from_app_state!`, its routes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use activenow_engine::{Backend, Engine, EngineConfig};
use axum::extract::DefaultBodyLimit;
use axum::extract::FromRef;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Settings;
use crate::host::{Host, HostParts};
use crate::metrics::{AppMetrics, WriteMetrics};
use crate::observe::ObserveState;
use crate::pages::stats::StatsSources;
use crate::protocol::activenow::ActiveNowState;
use crate::protocol::channels::{Channels, ChannelsState};
use crate::protocol::pusher::{Pusher, PusherState};
use crate::protocol::server_api::ServerApiState;
use crate::protocol::socketio::codec::SocketIoRenderer;
use crate::protocol::socketio::SocketIoState;
use crate::services::online::{Online, OnlineState};
use crate::services::session::{Sessions, SessionsState};
use crate::services::webhooks::Webhooks;
use crate::transport::origin::OriginPolicy;
use crate::transport::per_ip::IpLimits;

/// Cheap to clone: every protocol's and service's state. Handlers take only their own, by
/// `FromRef` (below); everything they share is the [`Host`].
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

pub struct AppInner {
    pub host: Host,
    pub activenow: ActiveNowState,
    pub socketio: SocketIoState,
    pub channels: ChannelsState,
    pub pusher: PusherState,
    pub server_api: ServerApiState,
    /// The online-status adapter (HTTP heartbeats, ping sockets, webhooks).
    pub online: OnlineState,
    /// The session-push adapter.
    pub sessions: SessionsState,
    pub observe: ObserveState,
    /// What the dashboard's stats read.
    pub stats: StatsSources,
    /// The webhook sender (`WEBHOOK_URL` set): online-status and room events.
    pub webhooks: Option<Webhooks>,
}

/// Each state a handler takes, from the app's state.
macro_rules! taken_from_app_state {
    ($($field:ident: $state:ty),* $(,)?) => {
        $(impl FromRef<AppState> for $state {
            fn from_ref(app: &AppState) -> Self {
                app.$field.clone()
            }
        })*
    };
}

taken_from_app_state!(
    host: Host,
    activenow: ActiveNowState,
    socketio: SocketIoState,
    channels: ChannelsState,
    pusher: PusherState,
    server_api: ServerApiState,
    online: OnlineState,
    sessions: SessionsState,
    observe: ObserveState,
);

impl std::ops::Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// The host's parts (`state.engine`, `state.settings`, ...) read through the app's state.
impl std::ops::Deref for AppInner {
    type Target = Host;
    fn deref(&self) -> &Host {
        &self.host
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
        let webhooks = Webhooks::start(&settings);
        if let Some(room) = webhooks.as_ref().and_then(|w| {
            crate::services::webhooks::RoomWebhooks::new(
                w,
                crate::protocol::pusher::is_control_room,
            )
        }) {
            engine.observe_all(room);
        }
        let online = Online::start(&engine, &settings, webhooks.clone());
        let pusher = Arc::new(Pusher::new(&settings, &engine));
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
        let sessions = Sessions::start(&engine, &settings);
        let socketio = Arc::new(SocketIoRenderer::default());
        let channels = Arc::new(Channels::new(&settings));
        let host = Host::new(HostParts {
            engine: engine.clone(),
            origins: OriginPolicy::new(settings.origin_allowlist()),
            limits: IpLimits::new(&settings),
            verifier: channels.verifier.clone(),
            uncounted: socketio.sessions.clone(),
            settings: settings.clone(),
            shutdown: CancellationToken::new(),
            sockets: TaskTracker::new(),
            metrics: AppMetrics::default(),
        });
        let mut service_metrics: Vec<Arc<dyn WriteMetrics>> =
            vec![Arc::new(online.clone()), Arc::new(sessions.clone())];
        if let Some(w) = &webhooks {
            service_metrics.push(Arc::new(w.clone()));
        }
        let protocol_metrics: Vec<Arc<dyn WriteMetrics>> = vec![socketio.clone()];
        let socket_count = socketio.clone();
        AppState(Arc::new(AppInner {
            activenow: ActiveNowState {
                host: host.clone(),
                renderers: crate::protocol::activenow::Renderers::default(),
            },
            socketio: SocketIoState {
                host: host.clone(),
                socketio,
            },
            channels: ChannelsState {
                host: host.clone(),
                channels,
            },
            pusher: PusherState {
                host: host.clone(),
                pusher,
                webhooks: pusher_webhooks
                    .into_iter()
                    .map(|(id, _, w)| (id, w))
                    .collect(),
            },
            server_api: ServerApiState {
                engine,
                settings: Arc::new(settings),
            },
            online: OnlineState {
                host: host.clone(),
                online,
            },
            sessions: SessionsState {
                host: host.clone(),
                sessions,
            },
            observe: ObserveState {
                host: host.clone(),
                protocol_metrics: protocol_metrics.into(),
                service_metrics: service_metrics.into(),
            },
            stats: StatsSources {
                host: host.clone(),
                socketio_sockets: Arc::new(move || socket_count.socket_count()),
            },
            webhooks,
            host,
        }))
    }
}

/// A Pusher-signed sender for each app with a webhook URL, with its id and room prefix.
fn pusher_webhooks(settings: &Settings, pusher: &Pusher) -> Vec<(String, String, Webhooks)> {
    use crate::services::webhooks::{Signing, Target};
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
        .merge(crate::pages::routes(&state.stats))
        .layer(crate::protocol::socketio::layer(&state.socketio))
        .layer(axum::middleware::from_fn_with_state(
            state.socketio.clone(),
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
        // transport/serve/); requests carry `ConnectInfo<SocketAddr>` and `ClientIp`.
        let serve = tokio::spawn(crate::transport::serve::serve(
            listener,
            app,
            state.host.clone(),
        ));
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
        if tokio::time::timeout_at(sockets_by, self.state.socketio.socketio.close())
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
        let _ = tokio::time::timeout(left, self.state.online.online.drain(left)).await;
        for (_, w) in self.state.pusher.webhooks.iter() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            w.flush(left).await;
        }
        self.state.sessions.sessions.stop();
        // Last: the services above may still write to the backend while they drain.
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let _ = tokio::time::timeout(left, self.state.engine.close_backend()).await;
    }
}
