//! The server API: what a back end asks of the presence server ("where is user X", room
//! figures, paged members, publishing to a room, disconnecting a user everywhere), and the
//! OpenAPI document of the whole HTTP API. Every endpoint here but `/openapi.json` takes
//! `Authorization: Bearer <API_KEY>` (see [`crate::api_key`]): the answers name identities
//! and their state across all rooms, which no browser should read, and with no `API_KEY` set
//! they answer 503 like the other server-side calls.

mod kick;
mod openapi;
mod publish;
mod queries;

use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;

use crate::app::AppState;
use crate::error::ApiError;

pub use openapi::{documented_routes, OPENAPI_JSON};
pub use publish::{server_event, SERVER_EVENT_PREFIX};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/users/{identity}",
            get(queries::user).delete(kick::kick),
        )
        .route("/v1/rooms/{room}", get(queries::room))
        .route("/v1/rooms/{room}/members", get(queries::members))
        .route("/v1/rooms/{room}/publish", post(publish::publish))
        .route("/openapi.json", get(openapi::serve))
}

fn authorize(app: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    crate::api_key::check(&app.settings.api_key, headers)
        .map_err(|r| ApiError::new(r.status(), r.code(), r.message()))
}
