//! Pusher's HTTP API under `/apps/{app_id}/`, every call signed (see [`super::auth`]).
//! Errors are what Pusher answers: a status with a plain-text body (400 bad request, 401 bad
//! signature or stale timestamp, 404 unknown app, 413 payload too large).
//!
//! - `events`: `events` and `batch_events`, which publish.
//! - `channels`: `channels`, `channel` and `users`, which read the engine's rooms.

pub mod channels;
pub mod events;

use std::collections::BTreeMap;

use axum::extract::Query;
use axum::http::{Method, StatusCode, Uri};

use super::{auth, now_ms, App};
use crate::protocol::pusher::PusherState;

pub(super) type Params = Query<Vec<(String, String)>>;

/// A refused call: its status and plain-text body.
pub(super) type Refused = (StatusCode, String);

pub(super) fn text(status: StatusCode, body: impl Into<String>) -> Refused {
    (status, body.into())
}

/// The app named in the path, once the request's signature checks out.
pub(super) fn authorize(
    app: &PusherState,
    app_id: &str,
    method: &Method,
    uri: &Uri,
    params: Vec<(String, String)>,
    body: &[u8],
) -> Result<(App, BTreeMap<String, String>), Refused> {
    let Some(pusher_app) = app.pusher.app_by_id(app_id).cloned() else {
        return Err(text(
            StatusCode::NOT_FOUND,
            format!("Unknown app {app_id:?}\n"),
        ));
    };
    let params: BTreeMap<String, String> = params
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let now = now_ms() / 1000;
    match auth::verify_request(&pusher_app, method.as_str(), uri.path(), &params, body, now) {
        Ok(()) => Ok((pusher_app, params)),
        Err(e) => {
            app.metrics.errors.inc();
            Err(text(StatusCode::UNAUTHORIZED, format!("{e}\n")))
        }
    }
}
