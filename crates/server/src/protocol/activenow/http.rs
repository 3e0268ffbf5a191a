//! Seed 0's HTTP API.

use std::collections::{BTreeMap, HashMap};

use activenow_engine::{EngineError, Identity, Room, State};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::codec::{DISPLAY_NAME, POSITION};
use super::{session_id, ApiError};
use crate::client_auth::{self, Caller};
use crate::protocol::activenow::ActiveNowState;

/// Most rooms `GET /v1/rooms/active` returns.
const ACTIVE_ROOMS_CAP: usize = 100;
const ACTIVE_ROOMS_DEFAULT: usize = 10;

fn engine_error(e: EngineError) -> ApiError {
    match e {
        EngineError::NotMember => ApiError::new(
            StatusCode::NOT_FOUND,
            crate::close::code::NOT_PRESENT,
            "that session is not present in that room",
        ),
        other => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            crate::close::code::BACKEND_UNAVAILABLE,
            other.to_string(),
        ),
    }
}

fn parse_room(name: Option<&str>) -> Result<Room, ApiError> {
    super::parse_client_room(name.unwrap_or("")).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            crate::close::code::BAD_ROOM,
            format!("room_name: {e}"),
        )
    })
}

#[derive(Deserialize)]
pub struct UpdateBody {
    room_name: String,
    display_name: Option<String>,
    position: Option<serde_json::Number>,
}

/// `POST /v1/activity/presence/update`: refreshes the session and broadcasts
/// `ACTIVITY_UPDATE_PRESENCE`. 404 unless the session is present in the room. With
/// CLIENT_AUTH=jwt the session is the bearer token's subject (a different
/// `x-socket-session-id` is 403); `Authorization: Bearer <API_KEY>` updates any session.
pub async fn update_presence(
    AxumState(app): AxumState<ActiveNowState>,
    headers: HeaderMap,
    body: Result<Json<UpdateBody>, JsonRejection>,
) -> Result<Response, Response> {
    let caller = client_auth::http_caller(&app, &headers).map_err(IntoResponse::into_response)?;
    let Json(body) = body.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            crate::close::code::BAD_BODY,
            e.body_text(),
        )
        .into_response()
    })?;
    let named = session_id(&headers, None, app.settings.max_session_id_bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            crate::close::code::BAD_SESSION_ID,
            e,
        )
        .into_response()
    })?;
    let identity = match (named, &caller) {
        (None, Caller::User(user)) => user.clone(),
        (Some(id), _) => id,
        (None, _) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                crate::close::code::MISSING_SESSION_ID,
                "x-socket-session-id header is required",
            )
            .into_response())
        }
    };
    if let Some(refused) = caller.refuse_acting_as(&identity) {
        return Err(refused.into_response());
    }
    update(&app, identity, body)
        .await
        .map_err(IntoResponse::into_response)
}

async fn update(
    app: &ActiveNowState,
    identity: Identity,
    body: UpdateBody,
) -> Result<Response, ApiError> {
    let room = parse_room(Some(&body.room_name))?;
    let mut patch = State::new();
    if let Some(name) = body.display_name {
        patch.insert(DISPLAY_NAME.into(), Value::String(name));
    }
    if let Some(position) = body.position {
        patch.insert(POSITION.into(), Value::Number(position));
    }
    let events = app
        .engine
        .update_identity(&room, &identity, &patch)
        .await
        .map_err(engine_error)?;
    let updated_at = events.first().map_or(0, |e| e.member.updated_at_ms);
    Ok(Json(json!({
        "ok": true,
        "identity": identity.as_str(),
        "room_name": room.as_str(),
        "updated_at": updated_at,
    }))
    .into_response())
}

#[derive(Serialize)]
struct PresenceEntry {
    identity: String,
    joined_at: u64,
    updated_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<Value>,
}

/// `GET /v1/activity/presence?room_name=R`: one entry per identity (tabs merged: earliest
/// join, latest update).
pub async fn list_presence(
    AxumState(app): AxumState<ActiveNowState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let room = parse_room(query.get("room_name").map(String::as_str))?;
    let members = app.engine.members(&room).await.map_err(engine_error)?;
    let mut by_identity: BTreeMap<String, PresenceEntry> = BTreeMap::new();
    for m in members {
        let entry = by_identity
            .entry(m.identity.as_str().to_owned())
            .or_insert_with(|| PresenceEntry {
                identity: m.identity.as_str().to_owned(),
                joined_at: m.joined_at_ms,
                updated_at: m.updated_at_ms,
                display_name: None,
                position: None,
            });
        entry.joined_at = entry.joined_at.min(m.joined_at_ms);
        if m.updated_at_ms >= entry.updated_at
            || entry.display_name.is_none() && entry.position.is_none()
        {
            entry.updated_at = entry.updated_at.max(m.updated_at_ms);
            if let Some(v) = m.state.get(DISPLAY_NAME) {
                entry.display_name = Some(v.clone());
            }
            if let Some(v) = m.state.get(POSITION) {
                entry.position = Some(v.clone());
            }
        }
    }
    Ok(Json(by_identity.into_values().collect::<Vec<_>>()).into_response())
}

/// Client-visible rooms with their counts, busiest first (ties by name).
async fn public_rooms(app: &ActiveNowState) -> Result<Vec<(Room, u64)>, ApiError> {
    let mut rooms: Vec<(Room, u64)> = app
        .engine
        .room_counts()
        .await
        .map_err(engine_error)?
        .into_iter()
        .filter(|(room, count)| !room.is_internal() && *count > 0)
        .collect();
    rooms.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(rooms)
}

/// `GET /v1/rooms/active?limit=10` (limit capped at 100): `[{room, count, path, title}]`.
pub async fn active_rooms(
    AxumState(app): AxumState<ActiveNowState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => ACTIVE_ROOMS_DEFAULT,
        Some(Ok(n)) => n.min(ACTIVE_ROOMS_CAP),
        Some(Err(_)) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                crate::close::code::BAD_LIMIT,
                "limit must be a non-negative integer",
            ))
        }
    };
    let rooms = public_rooms(&app).await?;
    // No room metadata is stored yet, so path and title repeat the room name (as in seed 0).
    let out: Vec<Value> = rooms
        .into_iter()
        .take(limit)
        .map(|(room, count)| {
            let name = room.as_str();
            json!({"room": name, "count": count, "path": name, "title": name})
        })
        .collect();
    Ok(Json(out).into_response())
}

/// `GET /v1/activity/rooms`: `{rooms: [...], room_count: {room: n}}`.
pub async fn rooms(AxumState(app): AxumState<ActiveNowState>) -> Result<Response, ApiError> {
    let rooms = public_rooms(&app).await?;
    let names: Vec<&str> = rooms.iter().map(|(r, _)| r.as_str()).collect();
    let counts: BTreeMap<&str, u64> = rooms.iter().map(|(r, c)| (r.as_str(), *c)).collect();
    Ok(Json(json!({"rooms": names, "room_count": counts})).into_response())
}

/// `GET /v1/metrics/online/today`: `{date, max, total, backend}` for the global visitors.
pub async fn online_today(AxumState(app): AxumState<ActiveNowState>) -> Result<Response, ApiError> {
    let (date, day) = app.engine.daily_visitors().await.map_err(engine_error)?;
    let backend = app.engine.backend_name();
    Ok(
        Json(json!({"date": date, "max": day.max, "total": day.total, "backend": backend}))
            .into_response(),
    )
}
