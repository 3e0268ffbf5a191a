//! `GET /v1/users/{identity}`, `GET /v1/rooms/{room}` and `GET /v1/rooms/{room}/members`:
//! answered from the store's indexes (never a scan of the rooms), the same on every node.

use activenow_engine::{EngineError, Identity, Member, Room};
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::authorize;
use super::state::ServerApiState;
use crate::error::ApiError;

pub(super) fn unavailable(e: EngineError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "backend_unavailable",
        e.to_string(),
    )
}

pub(super) fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

pub(super) fn parse_room(name: &str) -> Result<Room, ApiError> {
    Room::parse(name).map_err(|e| bad("bad_room", format!("room: {e}")))
}

/// One identity's connections in one room: the earliest join, the count, and the state of
/// the connection updated last (what a single-state protocol would show).
fn summary(members: &[Member]) -> (u64, u64, Option<&activenow_engine::State>) {
    let since = members.iter().map(|m| m.joined_at_ms).min().unwrap_or(0);
    let state = members
        .iter()
        .max_by_key(|m| (m.updated_at_ms, m.epoch))
        .map(|m| &m.state)
        .filter(|s| !s.is_empty());
    (since, members.len() as u64, state)
}

/// `GET /v1/users/{identity}`. Internal rooms (the visitors room, sessions, channel rooms)
/// are the engine's plumbing and are not listed.
pub async fn user(
    AxumState(app): AxumState<ServerApiState>,
    headers: HeaderMap,
    Path(identity): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    let identity = Identity::parse(&identity, app.settings.max_session_id_bytes)
        .map_err(|e| bad("bad_identity", format!("identity: {e}")))?;
    let rooms = app
        .engine
        .identity_rooms(&identity)
        .await
        .map_err(unavailable)?;
    let mut conns = std::collections::BTreeSet::new();
    let mut listed = Vec::new();
    for (room, members) in rooms.iter().filter(|(r, _)| !r.is_internal()) {
        conns.extend(members.iter().map(|m| m.conn.clone()));
        let (since, connections, state) = summary(members);
        let mut entry = json!({"room": room.as_str(), "since": since, "connections": connections});
        if let Some(state) = state {
            entry["state"] = Value::Object(state.clone());
        }
        listed.push(entry);
    }
    Ok(Json(json!({
        "identity": identity.as_str(),
        "online": !listed.is_empty(),
        "rooms": listed,
        "connections": conns.len(),
    }))
    .into_response())
}

/// `GET /v1/rooms/{room}`.
pub async fn room(
    AxumState(app): AxumState<ServerApiState>,
    headers: HeaderMap,
    Path(room): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    let room = parse_room(&room)?;
    let info = app.engine.room_info(&room).await.map_err(unavailable)?;
    Ok(Json(json!({
        "room": room.as_str(),
        "count": info.count,
        "connections": info.connections,
        "since": info.since_ms,
    }))
    .into_response())
}

#[derive(Deserialize)]
pub struct PageQuery {
    cursor: Option<String>,
    limit: Option<String>,
}

/// The cursor is the last identity of the previous page, base64url: opaque to callers, and
/// stable under churn (the next page starts after that identity whoever came or went).
fn decode_cursor(cursor: &str, max_bytes: usize) -> Result<Identity, ApiError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad("bad_cursor", "cursor: not one this server gave"))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| bad("bad_cursor", "cursor: not one this server gave"))?;
    Identity::parse(&text, max_bytes)
        .map_err(|_| bad("bad_cursor", "cursor: not one this server gave"))
}

/// `GET /v1/rooms/{room}/members?cursor=&limit=`: identities in byte order, `limit` of them
/// per page (`MEMBERS_PAGE_DEFAULT`, lowered to `MEMBERS_PAGE_MAX`); `next_cursor` is null
/// on the last page.
pub async fn members(
    AxumState(app): AxumState<ServerApiState>,
    headers: HeaderMap,
    Path(room): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    let room = parse_room(&room)?;
    let s = &app.settings;
    let limit = match q.limit.as_deref() {
        None | Some("") => s.members_page_default.min(s.members_page_max),
        Some(l) => match l.parse::<usize>() {
            Ok(n) if n > 0 => n.min(s.members_page_max),
            _ => return Err(bad("bad_limit", "limit: a positive integer")),
        },
    };
    let after = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(decode_cursor(c, s.max_session_id_bytes)?),
    };
    // One identity more than asked: whether another page follows, so the last page (a full
    // one included) says `next_cursor: null` and no walk ends on an empty page.
    let page = app
        .engine
        .members_page(&room, after.as_ref(), limit + 1)
        .await
        .map_err(unavailable)?;
    let mut out = Vec::new();
    let mut groups = page.chunk_by(|a, b| a.identity == b.identity);
    let mut last = None;
    for group in groups.by_ref().take(limit) {
        last = Some(&group[0].identity);
        let (since, connections, state) = summary(group);
        let mut entry = json!({
            "identity": group[0].identity.as_str(),
            "since": since,
            "connections": connections,
        });
        if let Some(state) = state {
            entry["state"] = Value::Object(state.clone());
        }
        out.push(entry);
    }
    let next = last
        .filter(|_| groups.next().is_some())
        .map(|id| URL_SAFE_NO_PAD.encode(id.as_str()));
    Ok(Json(json!({"room": room.as_str(), "members": out, "next_cursor": next})).into_response())
}
