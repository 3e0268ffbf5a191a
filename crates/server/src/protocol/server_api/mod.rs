//! The server API: what a back end asks of the presence server ("where is user X", room
//! figures, paged members, publishing to a room, disconnecting a user everywhere), and the
//! OpenAPI document of the whole HTTP API. Every endpoint here but `/openapi.json` takes
//! `Authorization: Bearer <API_KEY>` (see [`crate::api_key`]): the answers name identities
//! and their state across all rooms, which no browser should read, and with no `API_KEY` set
//! they answer 503 like the other server-side calls.

mod auth;
mod kick;
mod openapi;
mod publish;
mod queries;
pub mod server_event;
mod state;

use axum::routing::{get, post};
use axum::Router;

pub use state::ServerApiState;

pub use openapi::{documented_routes, OPENAPI_JSON};

/// The routes, for any app state the server API's own state can be taken from.
pub fn routes<S>() -> Router<S>
where
    ServerApiState: axum::extract::FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
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
