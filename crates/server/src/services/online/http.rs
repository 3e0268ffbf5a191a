//! The HTTP half of the online-status API, with the original server's paths, status codes and
//! JSON (cancan315/xiuxian-go); error bodies are `{"error": "..."}`.

use std::collections::HashMap;

use activenow_engine::{clock, Identity, IdentityError, OnlineRecord};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::client_auth::{self, Refusal};
use crate::services::online::OnlineState;
use crate::transport::client_ip::ClientIp;
use crate::transport::per_ip;

/// An HTTP error with the body `{"error": message}`.
pub struct OnlineError(StatusCode, String);

impl IntoResponse for OnlineError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad_request(msg: impl Into<String>) -> OnlineError {
    OnlineError(StatusCode::BAD_REQUEST, msg.into())
}

fn unavailable(e: impl std::fmt::Display) -> OnlineError {
    OnlineError(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("backend unavailable: {e}"),
    )
}

impl From<Refusal> for OnlineError {
    /// Seed 3's `{"error": "..."}` with the reason's code first.
    fn from(r: Refusal) -> OnlineError {
        OnlineError(r.status, format!("{}: {}", r.code, r.message))
    }
}

/// CLIENT_AUTH: the caller must be the server (API_KEY), `player` itself (its token), or
/// anyone with CLIENT_AUTH=off.
fn authorize(app: &OnlineState, headers: &HeaderMap, player: &Identity) -> Result<(), OnlineError> {
    let caller = client_auth::http_caller(app, headers)?;
    match caller.refuse_acting_as(player) {
        Some(refused) => Err(refused.into()),
        None => Ok(()),
    }
}

fn not_online() -> OnlineError {
    OnlineError(StatusCode::NOT_FOUND, "player is not online".into())
}

fn too_many(msg: &str) -> OnlineError {
    OnlineError(StatusCode::TOO_MANY_REQUESTS, msg.into())
}

fn full(max: u64) -> OnlineError {
    OnlineError(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("too many players online (ONLINE_MAX_PLAYERS = {max}); retry later"),
    )
}

/// A player id: a non-empty string (or integer, as game back ends send) of at most
/// `MAX_SESSION_ID_BYTES` bytes without control characters.
pub fn player_id(value: Option<&Value>, max_bytes: usize) -> Result<Identity, OnlineError> {
    let id = match value {
        None | Some(Value::Null) => return Err(bad_request("missing playerId")),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        Some(_) => return Err(bad_request("invalid playerId: must be a string")),
    };
    check_player_id(&id, max_bytes)
}

pub fn check_player_id(id: &str, max_bytes: usize) -> Result<Identity, OnlineError> {
    Identity::parse(id, max_bytes).map_err(|e| match e {
        IdentityError::Empty => bad_request("missing playerId"),
        _ => bad_request(format!(
            "invalid playerId: 1-{max_bytes} bytes without control characters"
        )),
    })
}

fn body(body: Result<Json<Value>, JsonRejection>) -> Result<Value, OnlineError> {
    match body {
        Ok(Json(v @ Value::Object(_))) => Ok(v),
        Ok(_) => Err(bad_request("the body must be a JSON object")),
        Err(e) => Err(bad_request(format!("invalid JSON body: {}", e.body_text()))),
    }
}

pub fn optional_text(
    v: Option<&Value>,
    field: &str,
    max: usize,
) -> Result<Option<String>, OnlineError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= max && !s.chars().any(char::is_control) => {
            Ok(Some(s.clone()))
        }
        Some(_) => Err(bad_request(format!(
            "invalid {field}: a string of at most {max} bytes"
        ))),
    }
}

/// `POST /api/online/login {playerId, ip?, name?}` -> `{message, playerId, loginTime}`.
pub async fn login(
    State(app): State<OnlineState>,
    headers: HeaderMap,
    ClientIp(client): ClientIp,
    raw: Result<Json<Value>, JsonRejection>,
) -> Result<Response, OnlineError> {
    // A game back end logging its players in (with API_KEY) is one IP for many players.
    let server_side = crate::api_key::check(&app.settings.api_key, &headers).is_ok();
    if !server_side && !per_ip::allow(&app.limits.online_logins, client) {
        app.metrics.per_ip_refused.inc();
        return Err(too_many(
            "too many logins from this address (ONLINE_LOGINS_PER_IP_PER_SECOND); retry later",
        ));
    }
    let v = body(raw)?;
    let max = app.settings.max_session_id_bytes;
    let player = player_id(v.get("playerId"), max)?;
    authorize(&app, &headers, &player)?;
    let ip = optional_text(v.get("ip"), "ip", 256)?.unwrap_or_else(|| client.to_string());
    let name = optional_text(v.get("name"), "name", 256)?;
    let online = &app.online;
    let max_online = app.settings.online_max_players;
    let (record, _) = online
        .timed(online.records.login(activenow_engine::records::Login {
            player: &player,
            ip: &ip,
            name: name.as_deref(),
            now_ms: clock::now_ms(),
            keep_online: false,
            max_online,
        }))
        .await
        .map_err(unavailable)?
        .ok_or_else(|| full(max_online))?;
    online.refresh_http(&player).await.map_err(unavailable)?;
    Ok(Json(json!({
        "message": "player marked online",
        "playerId": player.as_str(),
        "loginTime": record.login_ms,
    }))
    .into_response())
}

/// `POST /api/online/heartbeat {playerId}` -> `{message, playerId, lastHeartbeat}`; 404 when
/// the player is not online.
pub async fn heartbeat(
    State(app): State<OnlineState>,
    headers: HeaderMap,
    raw: Result<Json<Value>, JsonRejection>,
) -> Result<Response, OnlineError> {
    let v = body(raw)?;
    let player = player_id(v.get("playerId"), app.settings.max_session_id_bytes)?;
    authorize(&app, &headers, &player)?;
    let online = &app.online;
    let record = online
        .timed(online.records.heartbeat(&player, clock::now_ms()))
        .await
        .map_err(unavailable)?
        .ok_or_else(not_online)?;
    online.refresh_http(&player).await.map_err(unavailable)?;
    Ok(Json(json!({
        "message": "heartbeat recorded",
        "playerId": player.as_str(),
        "lastHeartbeat": record.last_heartbeat_ms,
    }))
    .into_response())
}

/// `POST /api/online/logout {playerId}` -> `{message, playerId, logoutTime}`; 404 when the
/// player is not online. Its sockets close on every node.
pub async fn logout(
    State(app): State<OnlineState>,
    headers: HeaderMap,
    raw: Result<Json<Value>, JsonRejection>,
) -> Result<Response, OnlineError> {
    let v = body(raw)?;
    let player = player_id(v.get("playerId"), app.settings.max_session_id_bytes)?;
    authorize(&app, &headers, &player)?;
    let record = app
        .online
        .logout(&player)
        .await
        .map_err(unavailable)?
        .ok_or_else(not_online)?;
    Ok(Json(json!({
        "message": "player marked offline",
        "playerId": player.as_str(),
        "logoutTime": record.logout_ms,
    }))
    .into_response())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Listed<'a> {
    player_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    login_time: u64,
    last_heartbeat: u64,
    /// Private: left out for callers that may not act as the player (CLIENT_AUTH=jwt).
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<&'a str>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    cursor: Option<String>,
    limit: Option<String>,
}

/// `GET /api/online/players[?cursor=&limit=]` -> `{players, count, total, nextCursor?}` in
/// player-id order; `count` is this page's length, `total` the players online.
pub async fn list(
    State(app): State<OnlineState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, OnlineError> {
    let caller = client_auth::http_caller(&app, &headers)?;
    let s = &app.settings;
    let limit = match q.limit.as_deref() {
        None | Some("") => s.online_page_default,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if n > 0 => n.min(s.online_page_max),
            _ => return Err(bad_request("limit must be a positive integer")),
        },
    };
    let after = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            check_player_id(c, s.max_session_id_bytes)
                .map_err(|_| bad_request("invalid cursor"))?,
        ),
    };
    let online = &app.online;
    let mut page = online
        .timed(online.records.list_online(after.as_ref(), limit + 1))
        .await
        .map_err(unavailable)?;
    let next = (page.len() > limit).then(|| {
        page.truncate(limit);
        page.last().map(|r| r.player.as_str().to_owned())
    });
    let total = online
        .engine
        .count(&online.room)
        .await
        .map_err(unavailable)?;
    let players: Vec<Listed> = page
        .iter()
        .map(|r| Listed {
            player_id: r.player.as_str(),
            name: r.name.as_deref(),
            login_time: r.login_ms,
            last_heartbeat: r.last_heartbeat_ms,
            ip: caller.may_act_as(&r.player).then_some(r.ip.as_str()),
        })
        .collect();
    let mut out = json!({"players": players, "count": players.len(), "total": total});
    if let Some(Some(cursor)) = next {
        out["nextCursor"] = Value::String(cursor);
    }
    Ok(Json(out).into_response())
}

fn record_json(r: &OnlineRecord, private: bool) -> Value {
    let mut v = json!({
        "playerId": r.player.as_str(),
        "loginTime": r.login_ms,
        "lastHeartbeat": r.last_heartbeat_ms,
        "status": if r.online { "online" } else { "offline" },
    });
    if private {
        v["ip"] = Value::String(r.ip.clone());
    }
    if let Some(name) = &r.name {
        v["name"] = Value::String(name.clone());
    }
    if let Some(t) = r.logout_ms {
        v["logoutTime"] = t.into();
    }
    v
}

/// `GET /api/online/player/{playerId}` (alias `/players/{playerId}`): the record, 404 unknown.
pub async fn player(
    State(app): State<OnlineState>,
    headers: HeaderMap,
    Path(params): Path<HashMap<String, String>>,
) -> Result<Response, OnlineError> {
    let caller = client_auth::http_caller(&app, &headers)?;
    let id = params.get("player_id").map(String::as_str).unwrap_or("");
    let player = check_player_id(id, app.settings.max_session_id_bytes)?;
    let online = &app.online;
    let record = online
        .timed(online.records.get(&player, clock::now_ms()))
        .await
        .map_err(unavailable)?
        .ok_or_else(|| OnlineError(StatusCode::NOT_FOUND, "player not found".into()))?;
    let private = caller.may_act_as(&record.player);
    Ok(Json(record_json(&record, private)).into_response())
}
