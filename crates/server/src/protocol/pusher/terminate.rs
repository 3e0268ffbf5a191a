//! Terminating a signed-in user's connections (`POST /apps/{id}/users/{user_id}/terminate_connections`).
//!
//! A successful `pusher:signin` joins the socket to its user's control room,
//! `pusher:{app_id}:#user-{id}` (`#` cannot start a channel name, so no client can subscribe to
//! it), with a renderer of its own that holds the socket's outbox. The API call publishes one
//! terminate publication to that room through the engine, so it reaches the user's sockets on
//! every node; each socket's renderer then queues `pusher:error` 4009 and finishes the
//! outbox, and the socket loop closes with 4009 ([`super::handler`]'s `finished_close`), the
//! code after which pusher-js does not reconnect (soketi and sockudo send the same).

use activenow_engine::{Outbox, Publication, Renderer, Room, RoomEvent};
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde_json::{json, Value};

use super::http::{authorize, text, Params};
use super::{codec, now_ms, App};
use crate::close::pusher_code as code;
use crate::protocol::pusher::PusherState;

/// The publication that closes a user's sockets; the leading control character keeps it out
/// of every client's event namespace (and [`super::PusherRenderer`] skips it).
const TERMINATE: &str = "\u{1}pusher:terminate";

/// What a terminated socket is told before the close.
pub(super) const TERMINATED: &str = "Connection terminated by the app (terminate_connections)";

/// The control room of a user's signed-in sockets.
pub(super) fn user_room(app: &App, user_id: &str) -> Option<Room> {
    Room::parse(&format!("{}#user-{user_id}", app.room_prefix())).ok()
}

/// One signed-in socket's renderer in its user's control room: it shows the socket nothing,
/// and on a terminate publication queues `pusher:error` 4009 and finishes the outbox.
pub(super) struct Terminator {
    outbox: Outbox,
}

impl Terminator {
    pub(super) fn new(outbox: Outbox) -> Terminator {
        Terminator { outbox }
    }
}

impl Renderer for Terminator {
    fn render(&self, _room: &Room, event: &RoomEvent) -> Option<Bytes> {
        if let RoomEvent::Publication(p) = event {
            if p.event == TERMINATE {
                // A full outbox is already closing as a slow consumer: closed either way.
                let _ = self
                    .outbox
                    .push(codec::error(code::UNAUTHORIZED, TERMINATED));
                self.outbox.finish();
            }
        }
        None
    }
}

/// `POST /apps/{id}/users/{user_id}/terminate_connections` -> `{}`: every socket signed in as
/// `user_id`, on every node, gets `pusher:error` 4009 and is closed with 4009.
pub async fn terminate_connections(
    AxumState(app): AxumState<PusherState>,
    Path((app_id, user_id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    Query(params): Params,
    body: Bytes,
) -> Response {
    let result = async {
        let (pusher_app, _) = authorize(&app, &app_id, &method, &uri, params, &body)?;
        let room = codec::server_to_user(&format!("{}{user_id}", codec::SERVER_TO_USER))
            .and_then(|_| user_room(&pusher_app, &user_id))
            .ok_or_else(|| {
                text(
                    StatusCode::BAD_REQUEST,
                    "user ids are 1-128 characters without control characters\n",
                )
            })?;
        let publication = Publication {
            event: TERMINATE.into(),
            data: Value::Null,
            from: None,
            ts_ms: now_ms(),
        };
        if let Err(e) = app.engine.publish(&room, publication, None).await {
            tracing::warn!(error = %e, "pusher terminate_connections failed");
            return Err(text(
                StatusCode::SERVICE_UNAVAILABLE,
                "backend unavailable; retry\n",
            ));
        }
        Ok(Json(json!({})).into_response())
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}
