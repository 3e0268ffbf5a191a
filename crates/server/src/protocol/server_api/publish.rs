//! `POST /v1/rooms/{room}/publish {event, data}`: a back end's event to every member of a
//! room, on every node, each in its protocol's shape. The publication travels as the
//! engine's `Publication` with [`SERVER_EVENT_PREFIX`] before the event name: the leading
//! control character keeps it out of protocols that do not know it, and each renderer that
//! does strips it (ActiveNow `SERVER_EVENT` frame, Socket.IO event, channels `message`,
//! Pusher event).

use activenow_engine::{clock, Publication};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::authorize;
use super::queries::parse_room;
use super::server_event::SERVER_EVENT_PREFIX;
use super::state::ServerApiState;
use crate::error::ApiError;
use crate::protocol::channels::codec::room_of;

/// Longest event name, bytes.
const MAX_EVENT_BYTES: usize = 128;

#[derive(Deserialize)]
pub struct PublishBody {
    event: String,
    #[serde(default)]
    data: Value,
}

pub async fn publish(
    AxumState(app): AxumState<ServerApiState>,
    headers: HeaderMap,
    Path(room): Path<String>,
    body: Result<Json<PublishBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    let room = parse_room(&room)?;
    let Json(body) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.body_text()))?;
    if body.event.is_empty()
        || body.event.len() > MAX_EVENT_BYTES
        || body.event.chars().any(char::is_control)
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_event",
            format!("event: 1-{MAX_EVENT_BYTES} bytes without control characters"),
        ));
    }
    let publication = Publication {
        event: format!("{SERVER_EVENT_PREFIX}{}", body.event),
        data: body.data,
        from: None,
        ts_ms: clock::now_ms(),
    };
    // Channel sockets live in rooms of their own namespace: the same name reaches them too.
    for target in [room.clone(), room_of(room.as_str())] {
        app.engine
            .publish(&target, publication.clone(), None)
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "backend_unavailable",
                    e.to_string(),
                )
            })?;
    }
    Ok(Json(json!({"ok": true, "room": room.as_str(), "event": body.event})).into_response())
}
