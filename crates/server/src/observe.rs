//! Health, readiness, Prometheus metrics and CORS: the operator's endpoints.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::host::Host;
use crate::metrics::{write_line, WriteMetrics};
use crate::transport::origin::OriginPolicy;

/// What the operator's endpoints read: the engine and the shared counters (the host), and
/// the lines the protocols and services write themselves, registered by the app.
#[derive(Clone)]
pub struct ObserveState {
    pub host: Host,
    /// Written after the shared message counters (Socket.IO's dropped and ignored events).
    pub protocol_metrics: Arc<[Arc<dyn WriteMetrics>]>,
    /// Written last (online status, session push, webhooks).
    pub service_metrics: Arc<[Arc<dyn WriteMetrics>]>,
}

/// The routes, for any app state the observe state can be taken from.
pub fn routes<S>() -> Router<S>
where
    ObserveState: axum::extract::FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/health", get(health))
        .route("/healthz", get(health))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(observe): State<ObserveState>) -> Response {
    let app = &observe.host;
    match app.engine.ping().await {
        Ok(()) => Json(json!({"status": "ready", "backend": app.engine.backend_name()})).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "backend": app.engine.backend_name(), "error": e.to_string()})),
        )
            .into_response(),
    }
}

async fn metrics(State(observe): State<ObserveState>) -> Response {
    let app = &observe.host;
    let e = app.engine.metrics();
    let a = &app.metrics;
    let rooms = app.engine.room_counts().await.ok();
    let mut out = String::with_capacity(2048);
    write_line(
        &mut out,
        "connections",
        "gauge",
        "WebSocket connections on this node.",
        e.connections.get(),
    );
    write_line(
        &mut out,
        "detached_connections",
        "gauge",
        "Presence held without a socket on this node (HTTP online-status logins).",
        e.detached_connections.get(),
    );
    write_line(
        &mut out,
        "lingering_connections",
        "gauge",
        "Dropped connections whose memberships wait for PRESENCE_LEAVE_GRACE_MS on this node.",
        e.lingering.get(),
    );
    write_line(
        &mut out,
        "leave_grace_overflows_total",
        "counter",
        "Drops that left at once because PRESENCE_LEAVE_GRACE_MAX_PENDING connections already lingered.",
        e.leave_grace_overflows.get(),
    );
    if let Some(rooms) = &rooms {
        let public = rooms.iter().filter(|(r, _)| !r.is_internal());
        write_line(
            &mut out,
            "rooms",
            "gauge",
            "Non-empty rooms.",
            public.count() as u64,
        );
    }
    write_line(
        &mut out,
        "joins_total",
        "counter",
        "Memberships joined.",
        e.joins.get(),
    );
    write_line(
        &mut out,
        "leaves_total",
        "counter",
        "Memberships left.",
        e.leaves.get(),
    );
    write_line(
        &mut out,
        "updates_total",
        "counter",
        "Presence updates.",
        e.updates.get(),
    );
    write_line(
        &mut out,
        "expirations_total",
        "counter",
        "Memberships removed by the reaper (TTL).",
        e.expirations.get(),
    );
    write_line(
        &mut out,
        "heartbeats_total",
        "counter",
        "Heartbeats received.",
        e.heartbeats.get(),
    );
    write_line(
        &mut out,
        "events_published_total",
        "counter",
        "Room events published through the broker.",
        e.events_published.get(),
    );
    write_line(
        &mut out,
        "messages_in_total",
        "counter",
        "Client WebSocket messages received.",
        a.messages_in.get(),
    );
    write_line(
        &mut out,
        "messages_out_total",
        "counter",
        "Frames queued to sockets by broadcasts.",
        e.frames_out.get(),
    );
    write_line(
        &mut out,
        "slow_consumers_total",
        "counter",
        "Sockets closed because their send queue stayed full (SLOW_CONSUMER_TIMEOUT_MS) or reached SEND_QUEUE_MAX_FRAMES.",
        e.slow_consumers.get(),
    );
    write_line(
        &mut out,
        "write_timeouts_total",
        "counter",
        "Sockets dropped at the TCP level because a write made no progress for SLOW_CONSUMER_TIMEOUT_MS.",
        a.write_timeouts.get(),
    );
    for source in observe.protocol_metrics.iter() {
        source.write_metrics(&mut out);
    }
    write_line(
        &mut out,
        "rate_limited_total",
        "counter",
        "Client messages dropped by the rate limit.",
        a.rate_limited.get(),
    );
    write_line(
        &mut out,
        "errors_total",
        "counter",
        "Client errors (bad JSON, unknown type, oversized frame, ...).",
        a.errors.get(),
    );
    write_line(
        &mut out,
        "upgrades_refused_total",
        "counter",
        "WebSocket upgrades refused (origin, room name, limit).",
        a.upgrades_refused.get(),
    );
    write_line(
        &mut out,
        "http_timeouts_total",
        "counter",
        "HTTP connections dropped by HTTP_HEADER_TIMEOUT_MS or HTTP_IDLE_TIMEOUT_MS.",
        a.http_timeouts.get(),
    );
    write_line(
        &mut out,
        "per_ip_refused_total",
        "counter",
        "Connections and requests refused (429) by a per-IP limit or rate.",
        a.per_ip_refused.get(),
    );
    write_line(
        &mut out,
        "backend_calls_total",
        "counter",
        "Backend calls.",
        e.backend_calls.get(),
    );
    write_line(
        &mut out,
        "backend_errors_total",
        "counter",
        "Backend calls that failed.",
        e.backend_errors.get(),
    );
    write_line(
        &mut out,
        "backend_latency_microseconds_total",
        "counter",
        "Sum of backend call latencies.",
        e.backend_latency_us.get(),
    );
    write_line(
        &mut out,
        "broker_messages_lost_total",
        "counter",
        "Room messages the broker dropped because this node read them too slowly.",
        app.engine.lost_messages(),
    );
    for source in observe.service_metrics.iter() {
        source.write_metrics(&mut out);
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
