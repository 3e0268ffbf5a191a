//! Health, readiness, Prometheus metrics and CORS: the operator's endpoints.

use std::fmt::Write;

use activenow_engine::metrics::{Counter, Gauge};
use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::app::AppState;
use crate::transport::origin::OriginPolicy;

/// Counters of the protocol layer (the engine keeps its own).
#[derive(Default)]
pub struct AppMetrics {
    pub messages_in: Counter,
    pub errors: Counter,
    pub rate_limited: Counter,
    pub upgrades_refused: Counter,
    /// Sockets dropped because a write made no progress for SLOW_CONSUMER_TIMEOUT_MS.
    pub write_timeouts: Counter,
    /// HTTP connections dropped by the header or idle timeout (slowloris, silent clients).
    pub http_timeouts: Counter,
    /// Requests and connections refused by a per-IP limit (429).
    pub per_ip_refused: Counter,
    /// Open sockets per protocol (the dashboard's "connections per protocol").
    pub sockets: SocketGauges,
}

/// Open WebSockets of each protocol on this node (Socket.IO counts its own).
#[derive(Default)]
pub struct SocketGauges {
    pub rooms: Gauge,
    pub visitors: Gauge,
    pub channels: Gauge,
    pub online: Gauge,
    pub sessions: Gauge,
}

/// Counts one open socket while it lives: `let _open = OpenSocket::new(&gauge);`.
pub struct OpenSocket<'a>(&'a Gauge);

impl<'a> OpenSocket<'a> {
    pub fn new(gauge: &'a Gauge) -> OpenSocket<'a> {
        gauge.inc();
        OpenSocket(gauge)
    }
}

impl Drop for OpenSocket<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/healthz", get(health))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(app): State<AppState>) -> Response {
    match app.engine.ping().await {
        Ok(()) => Json(json!({"status": "ready", "backend": app.engine.backend_name()})).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "backend": app.engine.backend_name(), "error": e.to_string()})),
        )
            .into_response(),
    }
}

async fn metrics(State(app): State<AppState>) -> Response {
    let e = app.engine.metrics();
    let a = &app.metrics;
    let rooms = app.engine.room_counts().await.ok();
    let mut out = String::with_capacity(2048);
    let mut line = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP activenow_{name} {help}\n# TYPE activenow_{name} {kind}\nactivenow_{name} {value}");
    };
    line(
        "connections",
        "gauge",
        "WebSocket connections on this node.",
        e.connections.get(),
    );
    line(
        "detached_connections",
        "gauge",
        "Presence held without a socket on this node (HTTP online-status logins).",
        e.detached_connections.get(),
    );
    line(
        "lingering_connections",
        "gauge",
        "Dropped connections whose memberships wait for PRESENCE_LEAVE_GRACE_MS on this node.",
        e.lingering.get(),
    );
    line(
        "leave_grace_overflows_total",
        "counter",
        "Drops that left at once because PRESENCE_LEAVE_GRACE_MAX_PENDING connections already lingered.",
        e.leave_grace_overflows.get(),
    );
    if let Some(rooms) = &rooms {
        let public = rooms.iter().filter(|(r, _)| !r.is_internal());
        line("rooms", "gauge", "Non-empty rooms.", public.count() as u64);
    }
    line(
        "joins_total",
        "counter",
        "Memberships joined.",
        e.joins.get(),
    );
    line(
        "leaves_total",
        "counter",
        "Memberships left.",
        e.leaves.get(),
    );
    line(
        "updates_total",
        "counter",
        "Presence updates.",
        e.updates.get(),
    );
    line(
        "expirations_total",
        "counter",
        "Memberships removed by the reaper (TTL).",
        e.expirations.get(),
    );
    line(
        "heartbeats_total",
        "counter",
        "Heartbeats received.",
        e.heartbeats.get(),
    );
    line(
        "events_published_total",
        "counter",
        "Room events published through the broker.",
        e.events_published.get(),
    );
    line(
        "messages_in_total",
        "counter",
        "Client WebSocket messages received.",
        a.messages_in.get(),
    );
    line(
        "messages_out_total",
        "counter",
        "Frames queued to sockets by broadcasts.",
        e.frames_out.get(),
    );
    line(
        "slow_consumers_total",
        "counter",
        "Sockets closed because their send queue stayed full (SLOW_CONSUMER_TIMEOUT_MS) or reached SEND_QUEUE_MAX_FRAMES.",
        e.slow_consumers.get(),
    );
    line(
        "write_timeouts_total",
        "counter",
        "Sockets dropped at the TCP level because a write made no progress for SLOW_CONSUMER_TIMEOUT_MS.",
        a.write_timeouts.get(),
    );
    line(
        "socketio_dropped_total",
        "counter",
        "Socket.IO broadcast packets not queued: the socket was closing or at its overflow bound (SEND_QUEUE_MAX_FRAMES).",
        app.socketio
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    line(
        "socketio_ignored_total",
        "counter",
        "Socket.IO events the server does not handle that asked for no ack, dropped without costing the rate budget.",
        app.socketio
            .ignored
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    line(
        "rate_limited_total",
        "counter",
        "Client messages dropped by the rate limit.",
        a.rate_limited.get(),
    );
    line(
        "errors_total",
        "counter",
        "Client errors (bad JSON, unknown type, oversized frame, ...).",
        a.errors.get(),
    );
    line(
        "upgrades_refused_total",
        "counter",
        "WebSocket upgrades refused (origin, room name, limit).",
        a.upgrades_refused.get(),
    );
    line(
        "http_timeouts_total",
        "counter",
        "HTTP connections dropped by HTTP_HEADER_TIMEOUT_MS or HTTP_IDLE_TIMEOUT_MS.",
        a.http_timeouts.get(),
    );
    line(
        "per_ip_refused_total",
        "counter",
        "Connections and requests refused (429) by a per-IP limit or rate.",
        a.per_ip_refused.get(),
    );
    line(
        "backend_calls_total",
        "counter",
        "Backend calls.",
        e.backend_calls.get(),
    );
    line(
        "backend_errors_total",
        "counter",
        "Backend calls that failed.",
        e.backend_errors.get(),
    );
    line(
        "backend_latency_microseconds_total",
        "counter",
        "Sum of backend call latencies.",
        e.backend_latency_us.get(),
    );
    line(
        "broker_messages_lost_total",
        "counter",
        "Room messages the broker dropped because this node read them too slowly.",
        app.engine.lost_messages(),
    );
    crate::services::online::write_metrics(&app, &mut out);
    crate::services::session::write_metrics(&app, &mut out);
    if let Some(w) = &app.webhooks {
        crate::services::webhooks::write_metrics(&w.metrics, &mut out);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// CORS for the HTTP API from `ALLOWED_ORIGINS` (any origin when it is empty).
pub fn cors(origins: &OriginPolicy) -> CorsLayer {
    let allow = match origins.allowlist() {
        None => AllowOrigin::any(),
        Some(list) => AllowOrigin::list(list.iter().filter_map(|o| HeaderValue::from_str(o).ok())),
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::HeaderName::from_static("x-socket-session-id"),
        ])
}
