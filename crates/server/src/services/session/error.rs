//! Errors of the session HTTP API: `{"error": "..."}` with the reference's messages.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// An HTTP error with the body `{"error": message}`.
pub struct SessionError(pub(super) StatusCode, pub(super) String);

impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        let mut resp = (self.0, Json(json!({ "error": self.1 }))).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

pub(super) fn bad_request(msg: impl Into<String>) -> SessionError {
    SessionError(StatusCode::BAD_REQUEST, msg.into())
}

pub fn not_found() -> SessionError {
    SessionError(StatusCode::NOT_FOUND, "Session not found".into())
}

pub fn unavailable(e: impl std::fmt::Display) -> SessionError {
    SessionError(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("backend unavailable: {e}"),
    )
}
