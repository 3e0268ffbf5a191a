//! Checks every WebSocket endpoint makes before it upgrades: the Origin allowlist and this
//! node's connection limit.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::error::http_error;
use crate::host::Host;

/// 403 when `ALLOWED_ORIGINS` is set and the request's Origin is not on it (or missing).
pub fn refuse_origin(host: &Host, headers: &HeaderMap) -> Option<Response> {
    if host.origins.allows(headers) {
        return None;
    }
    host.metrics.upgrades_refused.inc();
    Some(http_error(
        StatusCode::FORBIDDEN,
        crate::close::code::ORIGIN_NOT_ALLOWED,
        "Origin is not in ALLOWED_ORIGINS",
    ))
}

/// What `MAX_CONNECTIONS` counts: the engine's connections of this node and the Engine.IO
/// sessions not joined to it yet.
pub fn connections_held(host: &Host) -> u64 {
    host.engine.local_connections() + host.uncounted.count()
}

/// 503 when this node already holds `MAX_CONNECTIONS` sockets.
pub fn refuse_capacity(host: &Host) -> Option<Response> {
    if connections_held(host) < host.settings.max_connections {
        return None;
    }
    host.metrics.upgrades_refused.inc();
    Some(http_error(
        StatusCode::SERVICE_UNAVAILABLE,
        crate::close::code::TOO_MANY_CONNECTIONS,
        "MAX_CONNECTIONS reached; try another node",
    ))
}

/// Both checks, in that order.
pub fn refuse_upgrade(host: &Host, headers: &HeaderMap) -> Option<Response> {
    refuse_origin(host, headers).or_else(|| refuse_capacity(host))
}
