//! The HTTP half of session push: creating sessions (the page), reading their status, and the
//! app side (`Authorization: Bearer API_KEY`) that scans, confirms, rejects or notifies.
//! Error bodies are `{"error": "..."}` with the reference's messages.

use activenow_engine::sessions::PENDING;
use activenow_engine::{clock, PushOutcome};

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::create::{admit_creation, new_session};
use super::error::{bad_request, not_found, unavailable, SessionError};
use crate::services::session::SessionsState;
use crate::transport::client_ip::ClientIp;

/// Session ids are 1-128 of `[A-Za-z0-9_-]` (the server mints UUIDs); anything else is an
/// unknown session.
pub fn session_id(id: &str) -> Option<String> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| id.to_owned())
}

fn body(raw: Result<Json<Value>, JsonRejection>) -> Result<Value, SessionError> {
    match raw {
        Ok(Json(v @ Value::Object(_))) => Ok(v),
        Ok(_) => Err(bad_request("the body must be a JSON object")),
        Err(e) => Err(bad_request(format!("invalid JSON body: {}", e.body_text()))),
    }
}

/// An empty body counts as `{}` for the creating endpoints (the page may send nothing).
fn optional_body(raw: Result<Json<Value>, JsonRejection>) -> Result<Value, SessionError> {
    match raw {
        Err(JsonRejection::MissingJsonContentType(_)) => Ok(json!({})),
        other => body(other),
    }
}

pub fn text_field(v: &Value, field: &str, max: usize) -> Result<Option<String>, SessionError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= max => Ok(Some(s.clone())),
        Some(_) => Err(bad_request(format!(
            "{field} must be a string of 1-{max} bytes"
        ))),
    }
}

/// `Authorization: Bearer <API_KEY>` (see [`crate::api_key`]).
fn authorize(app: &SessionsState, headers: &HeaderMap) -> Result<(), SessionError> {
    crate::api_key::check(&app.settings.api_key, headers)
        .map_err(|r| SessionError(r.status(), r.message().into()))
}

fn qr_image(data: &str) -> Option<String> {
    let code = qrcode::QrCode::new(data.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(240, 240)
        .build();
    Some(format!(
        "data:image/svg+xml;base64,{}",
        data_encoding::BASE64.encode(svg.as_bytes())
    ))
}

/// `POST /v1/qr-login/generate {client_info?}` -> `{session_id, qr_data, qr_image,
/// expires_in}`; `qr_data` is the text to encode, `qr_image` an SVG data URL of it.
pub async fn generate(
    State(app): State<SessionsState>,
    headers: HeaderMap,
    client: ClientIp,
    raw: Result<Json<Value>, JsonRejection>,
) -> Result<Response, SessionError> {
    let creator = admit_creation(&app, &headers, client)?;
    let v = optional_body(raw)?;
    let info = text_field(&v, "client_info", 1024)?.map_or(Value::Null, Value::String);
    let ttl = app.settings.session_ttl;
    let state = new_session(&app, creator, "qr_login".into(), ttl, info).await?;
    let qr_data = json!({
        "session_id": state.id,
        "action": "login",
        "expires_at": state.expires_ms / 1000,
    })
    .to_string();
    let mut out = json!({"session_id": state.id, "qr_data": qr_data, "expires_in": ttl});
    if let Some(img) = qr_image(&qr_data) {
        out["qr_image"] = Value::String(img);
    }
    Ok(Json(out).into_response())
}

/// `POST /v1/sessions {ttl_secs?, kind?}` -> `{session_id, expires_at, expires_in}`
/// (`expires_at` in Unix seconds, as in `qr_data`).
pub async fn create(
    State(app): State<SessionsState>,
    headers: HeaderMap,
    client: ClientIp,
    raw: Result<Json<Value>, JsonRejection>,
) -> Result<Response, SessionError> {
    let creator = admit_creation(&app, &headers, client)?;
    let v = optional_body(raw)?;
    let s = &app.settings;
    let ttl = match v.get("ttl_secs") {
        None | Some(Value::Null) => s.session_ttl,
        Some(t) => match t.as_u64() {
            Some(n) if n >= 1 && n <= s.session_max_ttl => n,
            _ => {
                return Err(bad_request(format!(
                    "ttl_secs must be an integer 1-{}",
                    s.session_max_ttl
                )))
            }
        },
    };
    let kind = text_field(&v, "kind", 64)?.unwrap_or_else(|| "generic".into());
    let state = new_session(&app, creator, kind, ttl, Value::Null).await?;
    Ok(Json(json!({
        "session_id": state.id,
        "expires_at": state.expires_ms / 1000,
        "expires_in": ttl,
    }))
    .into_response())
}

/// `GET /v1/qr-login/status/{id}` (and `GET /v1/sessions/{id}`) -> `{status, web_token,
/// message}`; 404 `{status: "not_found"}` for an unknown session.
pub async fn status(
    State(app): State<SessionsState>,
    Path(id): Path<String>,
) -> Result<Response, SessionError> {
    let found = match session_id(&id) {
        Some(id) => app
            .sessions
            .timed(app.sessions.store.get(&id))
            .await
            .map_err(unavailable)?,
        None => None,
    };
    let Some(state) = found else {
        let body =
            json!({"status": "not_found", "web_token": null, "message": "Session not found"});
        return Ok((StatusCode::NOT_FOUND, Json(body)).into_response());
    };
    let status = if !state.finished && clock::now_ms() >= state.expires_ms {
        "expired".to_owned()
    } else {
        state.status.clone()
    };
    let last = state.pushes.last().map(|p| &p.message);
    let web_token = state
        .pushes
        .iter()
        .rev()
        .find_map(|p| p.message.get("web_token").cloned())
        .unwrap_or(Value::Null);
    let message = match status.as_str() {
        PENDING => "Waiting for scan".to_owned(),
        "expired" => "QR code expired".to_owned(),
        _ => last
            .and_then(|m| m.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
    };
    Ok(Json(json!({
        "status": status,
        "web_token": web_token,
        "message": message,
        "kind": state.kind,
        "expires_at": state.expires_ms / 1000,
    }))
    .into_response())
}

/// Stores and publishes one push; maps refusals to the reference's errors.
async fn push(
    app: &SessionsState,
    id: &str,
    status: &str,
    message: Value,
    close: bool,
) -> Result<u64, SessionError> {
    let id = session_id(id).ok_or_else(not_found)?;
    let sessions = &app.sessions;
    let outcome = sessions
        .timed(sessions.store.push(
            &id,
            status,
            message,
            close,
            clock::now_ms(),
            sessions.max_pushes,
        ))
        .await
        .map_err(unavailable)?;
    match outcome {
        PushOutcome::Pushed(p) => {
            sessions.publish(&id, &p).await;
            Ok(p.seq)
        }
        PushOutcome::NotFound => Err(not_found()),
        PushOutcome::Expired => Err(bad_request("Session has expired")),
        PushOutcome::Finished => Err(bad_request("Session already processed")),
    }
}

pub fn required_id(v: &Value) -> Result<String, SessionError> {
    match v.get("session_id") {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(bad_request("missing session_id")),
    }
}

/// `POST /v1/qr-login/scan {session_id}`: pushes `{"status":"scanned"}`.
pub async fn scan(
    State(app): State<SessionsState>,
    headers: HeaderMap,
    raw: Result<Json<Value>, JsonRejection>,
) -> Result<Response, SessionError> {
    authorize(&app, &headers)?;
    let v = body(raw)?;
    let id = required_id(&v)?;
    push(&app, &id, "scanned", json!({"status": "scanned"}), false).await?;
    Ok(Json(json!({"success": true, "message": "Scan recorded"})).into_response())
}

/// `POST /v1/qr-login/confirm {session_id, web_token}`: pushes `{"status":"confirmed",
/// "web_token":..., "message":"Login successful"}` and closes the socket.
pub async fn confirm(
    State(app): State<SessionsState>,
    headers: HeaderMap,
    raw: Result<Json<Value>, JsonRejection>,
) -> Result<Response, SessionError> {
    authorize(&app, &headers)?;
    let v = body(raw)?;
    let id = required_id(&v)?;
    let token =
        text_field(&v, "web_token", 8192)?.ok_or_else(|| bad_request("missing web_token"))?;
    let message = json!({"status": "confirmed", "web_token": token, "message": "Login successful"});
    push(&app, &id, "confirmed", message, true).await?;
    Ok(Json(json!({"success": true, "message": "Login confirmed successfully"})).into_response())
}

/// `POST /v1/qr-login/reject {session_id}`: pushes `{"status":"rejected",...}` and closes.
pub async fn reject(
    State(app): State<SessionsState>,
    headers: HeaderMap,
    raw: Result<Json<Value>, JsonRejection>,
) -> Result<Response, SessionError> {
    authorize(&app, &headers)?;
    let v = body(raw)?;
    let id = required_id(&v)?;
    let message = json!({"status": "rejected", "message": "Login rejected by user"});
    push(&app, &id, "rejected", message, true).await?;
    Ok(Json(json!({"success": true, "message": "Login rejected successfully"})).into_response())
}

/// `POST /v1/sessions/{id}/notify {status, data?, close?}`: pushes `{"status":..., "data":...}`;
/// `close` defaults to true.
pub async fn notify(
    State(app): State<SessionsState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    raw: Result<Json<Value>, JsonRejection>,
) -> Result<Response, SessionError> {
    authorize(&app, &headers)?;
    let v = body(raw)?;
    let status = match v.get("status") {
        Some(Value::String(s))
            if !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            s.clone()
        }
        _ => return Err(bad_request("status must be 1-64 of [A-Za-z0-9_-]")),
    };
    let close = match v.get("close") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad_request("close must be a boolean")),
    };
    let mut message = json!({ "status": status });
    if let Some(data) = v.get("data").filter(|d| !d.is_null()) {
        message["data"] = data.clone();
    }
    let seq = push(&app, &id, &status, message, close).await?;
    Ok(Json(json!({"success": true, "seq": seq})).into_response())
}

/// `DELETE /v1/sessions/{id}`: removes the session (idempotent: 204 whether or not it was
/// there); waiting sockets get `{"status":"removed"}` and close.
pub async fn remove(
    State(app): State<SessionsState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, SessionError> {
    authorize(&app, &headers)?;
    if let Some(id) = session_id(&id) {
        let sessions = &app.sessions;
        let removed = sessions
            .timed(sessions.store.remove(&id))
            .await
            .map_err(unavailable)?;
        if removed {
            let push = activenow_engine::SessionPush {
                seq: u64::MAX,
                message: json!({"status": "removed", "message": "Session removed"}),
                close: true,
            };
            sessions.publish(&id, &push).await;
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
