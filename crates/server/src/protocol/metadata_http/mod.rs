//! HTTP channel metadata (`GET|PUT|PATCH|DELETE /v1/channels/{type}/{name}/metadata`) and
//! named locks (`POST|DELETE|GET /v1/locks/{name}`). Reads are open; writes need
//! `Authorization: Bearer API_KEY` (server-side callers: the actor of a metadata write is
//! the body's `actorUserId`).

use std::collections::HashMap;

use activenow_engine::{
    ChannelKey, Identity, LockAcquire, LockRelease, MetadataError, MetadataOp, MetadataWrite,
};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde_json::{json, Value};

use axum::routing::{get, post};
use axum::Router;

use crate::close::code;
use crate::error::{http_error, ApiError};
use crate::host::Host;
use crate::protocol::socketio::codec::MetadataResponse;
use crate::protocol::socketio::locks::{ttl, valid_name};
use crate::protocol::socketio::metadata::{channel, error_code, write_and_publish, write_request};

/// HTTP routes of the channel metadata and lock API, for any app state the host can be
/// taken from.
pub fn routes<S>() -> Router<S>
where
    Host: axum::extract::FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route(
            "/v1/channels/{channel_type}/{channel_name}/metadata",
            get(get_metadata)
                .put(set_metadata)
                .patch(update_metadata)
                .delete(remove_metadata),
        )
        .route(
            "/v1/locks/{name}",
            post(acquire_lock).delete(release_lock).get(lock_holder),
        )
}

/// Checks `Authorization: Bearer API_KEY` (see [`crate::api_key`]).
fn authorize(app: &Host, headers: &HeaderMap) -> Result<(), ApiError> {
    crate::api_key::check(&app.settings.api_key, headers)
        .map_err(|r| ApiError::new(r.status(), r.code(), r.message()))
}

fn metadata_error(e: &MetadataError) -> Response {
    let status = match e {
        MetadataError::Conflict(_) => StatusCode::CONFLICT,
        MetadataError::Lock(_) => StatusCode::LOCKED,
        MetadataError::Invalid(_) => StatusCode::BAD_REQUEST,
        MetadataError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    http_error(status, error_code(e), e.to_string())
}

fn path_channel(kind: &str, name: &str) -> Result<ChannelKey, ApiError> {
    channel(
        Some(name).filter(|s| !s.is_empty()),
        Some(kind).filter(|s| !s.is_empty()),
    )
    .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, code::METADATA_INVALID, m))
}

fn json_body(body: &Bytes) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            code::BAD_JSON,
            format!(
                "body is not JSON: {}",
                crate::close::clip(&e.to_string(), crate::close::DETAIL_BYTES)
            ),
        )
    })
}

pub async fn get_metadata(
    State(app): State<Host>,
    Path((kind, name)): Path<(String, String)>,
) -> Response {
    let channel = match path_channel(&kind, &name) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    match app.engine.metadata(&channel).await {
        Ok(m) => Json(MetadataResponse::new(
            &channel,
            &m,
            activenow_engine::clock::now_ms(),
        ))
        .into_response(),
        Err(e) => metadata_error(&e),
    }
}

async fn write(
    app: Host,
    kind: String,
    name: String,
    headers: HeaderMap,
    body: Bytes,
    op: MetadataOp,
) -> Response {
    if let Err(r) = authorize(&app, &headers) {
        return r.into_response();
    }
    let channel = match path_channel(&kind, &name) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let actor = match body.get("actorUserId") {
        None | Some(Value::Null) => None,
        Some(Value::String(a)) if !a.is_empty() => Some(a.clone()),
        Some(_) => {
            return http_error(
                StatusCode::BAD_REQUEST,
                code::METADATA_INVALID,
                "actorUserId must be a non-empty string",
            )
        }
    };
    let write: MetadataWrite = match write_request(op, &body, actor) {
        Ok(w) => w,
        Err(m) => return http_error(StatusCode::BAD_REQUEST, code::METADATA_INVALID, m),
    };
    match write_and_publish(&app, &channel, &write).await {
        Ok(change) => Json(MetadataResponse::new(
            &channel,
            &change.metadata,
            change.ts_ms,
        ))
        .into_response(),
        Err(e) => metadata_error(&e),
    }
}

pub async fn set_metadata(
    State(app): State<Host>,
    Path((kind, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(app, kind, name, headers, body, MetadataOp::Set).await
}

pub async fn update_metadata(
    State(app): State<Host>,
    Path((kind, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(app, kind, name, headers, body, MetadataOp::Update).await
}

pub async fn remove_metadata(
    State(app): State<Host>,
    Path((kind, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(app, kind, name, headers, body, MetadataOp::Remove).await
}

fn lock_name(name: &str) -> Result<(), ApiError> {
    valid_name(name).map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, code::LOCK_INVALID, m))
}

fn owner_of(app: &Host, owner: Option<&str>) -> Result<String, ApiError> {
    // A lock's owner is an identity (the metadata write's actor), under the same rule.
    let max = app.settings.max_session_id_bytes;
    match owner.map(|o| Identity::parse(o, max)) {
        Some(Ok(o)) => Ok(o.as_str().to_owned()),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            code::LOCK_INVALID,
            format!(
                "owner must be 1-{} bytes without control characters",
                app.settings.max_session_id_bytes
            ),
        )),
    }
}

fn internal(e: impl std::fmt::Display) -> Response {
    http_error(
        StatusCode::SERVICE_UNAVAILABLE,
        code::INTERNAL,
        format!("{e}; retry"),
    )
}

/// `POST /v1/locks/{name} {owner, ttl_ms}`: 200 when taken (or extended by its holder),
/// 409 when someone else holds it.
pub async fn acquire_lock(
    State(app): State<Host>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authorize(&app, &headers).and_then(|()| lock_name(&name)) {
        return r.into_response();
    }
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let owner = match owner_of(&app, body.get("owner").and_then(Value::as_str)) {
        Ok(o) => o,
        Err(r) => return r.into_response(),
    };
    let requested = body.get("ttl_ms").or_else(|| body.get("ttlMs"));
    let ttl_ms = match ttl(requested, app.settings.lock_max_ttl_ms) {
        Ok(t) => t,
        Err(m) => return http_error(StatusCode::BAD_REQUEST, code::LOCK_INVALID, m),
    };
    match app.engine.acquire_lock(&name, &owner, ttl_ms).await {
        Ok(LockAcquire::Acquired { ttl_ms }) => {
            Json(json!({"name": name, "owner": owner, "ttl_ms": ttl_ms})).into_response()
        }
        Ok(LockAcquire::Held(h)) => (
            StatusCode::CONFLICT,
            Json(json!({
                "error": code::LOCK_HELD,
                "message": format!("lock \"{name}\" is held by another owner"),
                "owner": h.owner,
                "ttl_ms": h.ttl_ms,
            })),
        )
            .into_response(),
        Err(e) => internal(e),
    }
}

/// `DELETE /v1/locks/{name}?owner=`: 200 released, 404 not held, 409 held by another owner.
pub async fn release_lock(
    State(app): State<Host>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&app, &headers).and_then(|()| lock_name(&name)) {
        return r.into_response();
    }
    let owner = match owner_of(&app, query.get("owner").map(String::as_str)) {
        Ok(o) => o,
        Err(r) => return r.into_response(),
    };
    match app.engine.release_lock(&name, &owner).await {
        Ok(LockRelease::Released) => Json(json!({"name": name, "released": true})).into_response(),
        Ok(LockRelease::NotHeld) => http_error(
            StatusCode::NOT_FOUND,
            code::LOCK_NOT_HELD,
            format!("lock \"{name}\" is not held"),
        ),
        Ok(LockRelease::HeldByOther(_)) => http_error(
            StatusCode::CONFLICT,
            code::LOCK_NOT_OWNER,
            format!("lock \"{name}\" is held by another owner"),
        ),
        Err(e) => internal(e),
    }
}

/// `GET /v1/locks/{name}`: the holder and remaining TTL, 404 when free.
pub async fn lock_holder(State(app): State<Host>, Path(name): Path<String>) -> Response {
    if let Err(r) = lock_name(&name) {
        return r.into_response();
    }
    match app.engine.lock_holder(&name).await {
        Ok(Some(h)) => {
            Json(json!({"name": name, "owner": h.owner, "ttl_ms": h.ttl_ms})).into_response()
        }
        Ok(None) => http_error(
            StatusCode::NOT_FOUND,
            code::LOCK_NOT_HELD,
            format!("lock \"{name}\" is not held"),
        ),
        Err(e) => internal(e),
    }
}
