//! Seed 0's HTTP API.

use std::collections::{BTreeMap, HashMap};

use activenow_engine::{EngineError, Room, State};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::codec::{DISPLAY_NAME, POSITION};
use super::{http_error, session_id};
use crate::app::AppState;

/// Most rooms `GET /v1/rooms/active` returns.
const ACTIVE_ROOMS_CAP: usize = 100;
const ACTIVE_ROOMS_DEFAULT: usize = 10;

fn engine_error(e: EngineError) -> Response {
    match e {
        EngineError::NotMember => http_error(
            StatusCode::NOT_FOUND,
            "not_present",
            "that session is not present in that room",
        ),
        other => http_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "backend_unavailable",
            other.to_string(),
        ),
    }
}

fn parse_room(name: Option<&str>) -> Result<Room, Response> {
    Room::parse(name.unwrap_or("")).map_err(|e| {
        http_error(
            StatusCode::BAD_REQUEST,
            "bad_room",
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
/// `ACTIVITY_UPDATE_PRESENCE`. 404 unless the session is present in the room.
pub async fn update_presence(
    AxumState(app): AxumState<AppState>,
    headers: HeaderMap,
    body: Result<Json<UpdateBody>, JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(body) => body,
        Err(e) => return http_error(StatusCode::BAD_REQUEST, "bad_body", e.body_text()),
    };
    let identity = match session_id(&headers, None, app.settings.max_session_id_bytes) {
        Ok(Some(id)) => id,
        Ok(None) => {
            return http_error(
                StatusCode::BAD_REQUEST,
                "missing_session_id",
                "x-socket-session-id header is required",
            )
        }
        Err(e) => return http_error(StatusCode::BAD_REQUEST, "bad_session_id", e),
    };
    let room = match parse_room(Some(&body.room_name)) {
        Ok(room) => room,
        Err(r) => return r,
    };
    let mut patch = State::new();
    if let Some(name) = body.display_name {
        patch.insert(DISPLAY_NAME.into(), Value::String(name));
    }
    if let Some(position) = body.position {
        patch.insert(POSITION.into(), Value::Number(position));
    }
    match app.engine.update_identity(&room, &identity, &patch).await {
        Ok(events) => {
            let updated_at = events.first().map_or(0, |e| e.member.updated_at_ms);
            Json(json!({"ok": true, "identity": identity.as_str(), "room_name": room.as_str(), "updated_at": updated_at}))
                .into_response()
        }
        Err(e) => engine_error(e),
    }
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
    AxumState(app): AxumState<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let room = match parse_room(query.get("room_name").map(String::as_str)) {
        Ok(room) => room,
        Err(r) => return r,
    };
    let members = match app.engine.members(&room).await {
        Ok(m) => m,
        Err(e) => return engine_error(e),
    };
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
    Json(by_identity.into_values().collect::<Vec<_>>()).into_response()
}

/// Client-visible rooms with their counts, busiest first (ties by name).
async fn public_rooms(app: &AppState) -> Result<Vec<(Room, u64)>, Response> {
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
    AxumState(app): AxumState<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => ACTIVE_ROOMS_DEFAULT,
        Some(Ok(n)) => n.min(ACTIVE_ROOMS_CAP),
        Some(Err(_)) => {
            return http_error(
                StatusCode::BAD_REQUEST,
                "bad_limit",
                "limit must be a non-negative integer",
            )
        }
    };
    let rooms = match public_rooms(&app).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    // No room metadata is stored yet, so path and title repeat the room name (as in seed 0).
    let out: Vec<Value> = rooms
        .into_iter()
        .take(limit)
        .map(|(room, count)| json!({"room": room.as_str(), "count": count, "path": room.as_str(), "title": room.as_str()}))
        .collect();
    Json(out).into_response()
}

/// `GET /v1/activity/rooms`: `{rooms: [...], room_count: {room: n}}`.
pub async fn rooms(AxumState(app): AxumState<AppState>) -> Response {
    let rooms = match public_rooms(&app).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let names: Vec<&str> = rooms.iter().map(|(r, _)| r.as_str()).collect();
    let counts: BTreeMap<&str, u64> = rooms.iter().map(|(r, c)| (r.as_str(), *c)).collect();
    Json(json!({"rooms": names, "room_count": counts})).into_response()
}

/// `GET /v1/metrics/online/today`: `{date, max, total, backend}` for the global visitors.
pub async fn online_today(AxumState(app): AxumState<AppState>) -> Response {
    let (date, day) = match app.engine.daily_visitors().await {
        Ok(d) => d,
        Err(e) => return engine_error(e),
    };
    Json(json!({"date": date, "max": day.max, "total": day.total, "backend": app.engine.backend_name()})).into_response()
}
