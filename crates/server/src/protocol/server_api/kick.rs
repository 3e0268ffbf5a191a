//! `DELETE /v1/users/{identity}[?rooms=a,b]`: disconnects the identity's connections on every
//! node (those in the listed rooms only, with `rooms`). WebSockets close with
//! [`close::KICKED`](crate::close::KICKED) (4003) and reason `kicked`; Socket.IO sockets get the
//! event `activenow:kicked` and a server disconnect. A connection in several rooms (a channels
//! or Pusher socket) is closed as a whole. The leaves follow as for any closed socket.

use activenow_engine::{Identity, Room};
use axum::extract::{Path, Query, State as AxumState};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::auth::authorize;
use super::queries::{bad, parse_room, unavailable};
use super::state::ServerApiState;
use crate::error::ApiError;

#[derive(Deserialize)]
pub struct KickQuery {
    rooms: Option<String>,
}

pub async fn kick(
    AxumState(app): AxumState<ServerApiState>,
    headers: HeaderMap,
    Path(identity): Path<String>,
    Query(q): Query<KickQuery>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    let identity = Identity::parse(&identity, app.settings.max_session_id_bytes)
        .map_err(|e| bad("bad_identity", format!("identity: {e}")))?;
    let only: Option<Vec<Room>> = match q.rooms.as_deref() {
        None => None,
        Some(list) => Some(
            list.split(',')
                .filter(|r| !r.is_empty())
                .map(parse_room)
                .collect::<Result<_, _>>()?,
        ),
    };
    let kicked = app
        .engine
        .kick(&identity, only.as_deref())
        .await
        .map_err(unavailable)?;
    let mut conns = std::collections::BTreeSet::new();
    let rooms: Vec<&str> = kicked
        .iter()
        .filter(|(r, _)| !r.is_internal())
        .map(|(r, _)| r.as_str())
        .collect();
    for (_, c) in &kicked {
        conns.extend(c.iter().cloned());
    }
    Ok(Json(json!({
        "identity": identity.as_str(),
        "rooms": rooms,
        "connections": conns.len(),
    }))
    .into_response())
}
