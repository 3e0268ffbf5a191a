//! The ActiveNow protocol (seed 0): room presence sockets, the global visitors socket, and
//! the presence HTTP API, exactly as the original ActiveNow clients expect them.

pub mod codec;
mod http;
mod room;
mod visitors;

use std::sync::Arc;

use activenow_engine::{Identity, Renderer};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;

pub use crate::error::{http_error, ApiError};
use crate::host::Host;

pub use codec::{RoomRenderer, VisitorRenderer};

/// The header that carries the session id (identity).
pub const SESSION_HEADER: &str = "x-socket-session-id";

/// This protocol's renderers; one instance each, so the hub groups all their sockets.
#[derive(Clone)]
pub struct Renderers {
    pub room: Arc<dyn Renderer>,
    pub visitors: Arc<dyn Renderer>,
}

impl Default for Renderers {
    fn default() -> Self {
        Renderers {
            room: Arc::new(RoomRenderer),
            visitors: Arc::new(VisitorRenderer),
        }
    }
}

/// What this protocol's handlers take: the host and the renderers.
#[derive(Clone)]
pub struct ActiveNowState {
    pub host: Host,
    pub renderers: Renderers,
}

impl std::ops::Deref for ActiveNowState {
    type Target = Host;
    fn deref(&self) -> &Host {
        &self.host
    }
}

/// The routes, for any app state this protocol's state can be taken from.
pub fn routes<S>() -> Router<S>
where
    ActiveNowState: axum::extract::FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/v1/ws", get(room::upgrade))
        .route("/v1/ws/web", get(visitors::upgrade))
        .route("/web", get(visitors::upgrade))
        .route("/v1/activity/presence/update", post(http::update_presence))
        .route("/v1/activity/presence", get(http::list_presence))
        .route("/v1/rooms/active", get(http::active_rooms))
        .route("/v1/activity/rooms", get(http::rooms))
        .route("/v1/metrics/online/today", get(http::online_today))
}

/// The session id of a request: the header wins over `socket_session_id`; `None` when
/// neither is given. Invalid ids (empty, too long, control characters) are an error.
pub fn session_id(
    headers: &HeaderMap,
    query: Option<&str>,
    max_bytes: usize,
) -> Result<Option<Identity>, String> {
    let given = match headers.get(SESSION_HEADER) {
        Some(h) => Some(
            h.to_str()
                .map_err(|_| "session id is not visible ASCII".to_owned())?,
        ),
        None => query,
    };
    let Some(id) = given else {
        return Ok(None);
    };
    Identity::parse(id, max_bytes)
        .map(Some)
        .map_err(|_| format!("session id must be 1-{max_bytes} bytes without control characters"))
}

/// A room named by a client of this protocol: the engine's rule, minus the Pusher namespace
/// (`pusher:`), which only the Pusher endpoint may join after its signature check.
pub fn parse_client_room(name: &str) -> Result<activenow_engine::Room, String> {
    if crate::protocol::pusher::is_reserved_room(name) {
        return Err("names starting with pusher: belong to the Pusher protocol".into());
    }
    activenow_engine::Room::parse(name).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_wins_and_bad_ids_are_refused() {
        let mut h = HeaderMap::new();
        assert_eq!(
            session_id(&h, Some("q"), 8).unwrap(),
            Some(Identity::new("q"))
        );
        h.insert(SESSION_HEADER, "h".parse().unwrap());
        assert_eq!(
            session_id(&h, Some("q"), 8).unwrap(),
            Some(Identity::new("h"))
        );
        assert!(session_id(&HeaderMap::new(), Some("123456789"), 8).is_err());
        assert!(session_id(&HeaderMap::new(), Some(""), 8).is_err());
        assert_eq!(session_id(&HeaderMap::new(), None, 8).unwrap(), None);
    }
}
