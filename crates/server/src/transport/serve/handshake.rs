//! Per-IP admission of handshakes, decided before the request body is read or routed: a
//! client over its handshake rate, or over its WebSocket count behind a trusted proxy, is
//! refused with 429 without costing a protocol handler anything.

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode};

use super::stream::Forwarded;
use crate::error::http_error;
use crate::host::Host;
use crate::transport::per_ip;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Handshake {
    WebSocket,
    /// An Engine.IO polling handshake (a GET without `sid`): a session without a socket.
    Polling,
}

pub(super) fn handshake(req: &Request<Body>) -> Option<Handshake> {
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if upgrade {
        return Some(Handshake::WebSocket);
    }
    let polling = req.method() == axum::http::Method::GET
        && req.uri().path().starts_with("/socket.io")
        && req.uri().query().is_some_and(|q| {
            q.split('&').any(|p| p == "transport=polling")
                && !q.split('&').any(|p| p.starts_with("sid="))
        });
    polling.then_some(Handshake::Polling)
}

fn too_many(code: &'static str, message: &'static str) -> Response<Body> {
    http_error(StatusCode::TOO_MANY_REQUESTS, code, message)
}

/// The handshake rate of the client, and behind a trusted proxy its WebSocket count.
pub(super) fn admit_handshake(
    host: &Host,
    peer: SocketAddr,
    forwarded: Option<&Forwarded>,
    client: IpAddr,
    kind: Handshake,
) -> Option<Response<Body>> {
    let limits = &host.limits;
    if !per_ip::allow(&limits.handshakes, client) {
        host.metrics.per_ip_refused.inc();
        return Some(too_many(
            crate::close::code::TOO_MANY_HANDSHAKES,
            "MAX_HANDSHAKES_PER_IP_PER_SECOND reached for this address; retry later",
        ));
    }
    let proxied = limits.trusted.contains(peer.ip());
    if let (Some(counts), Some(forwarded), true, Handshake::WebSocket) =
        (&limits.connections, forwarded, proxied, kind)
    {
        let mut held = forwarded.lock().unwrap_or_else(|e| e.into_inner());
        held.take();
        match counts.acquire(client) {
            Some(slot) => *held = Some(slot),
            None => {
                host.metrics.per_ip_refused.inc();
                return Some(too_many(
                    crate::close::code::TOO_MANY_CONNECTIONS,
                    "MAX_CONNECTIONS_PER_IP reached for this address",
                ));
            }
        }
    }
    None
}
