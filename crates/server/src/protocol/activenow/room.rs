//! `GET /v1/ws?room=<room>[&socket_session_id=<id>]`: room presence.

use std::collections::HashMap;

use crate::transport::websocket::{WebSocket, WebSocketUpgrade, WebSocketUpgradeRejection};
use activenow_engine::{Connection, EngineError, Identity, Liveness, Room, State};
use axum::extract::{Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::codec::{self, ClientMessage};
use super::{http_error, session_id};
use crate::client_auth::{self, Expiring, Proof, Refusal};
use crate::close::{code, reason};
use crate::ids::random_session_id;
use crate::protocol::activenow::ActiveNowState;
use crate::transport::admission::refuse_upgrade;
use crate::transport::ws::{self, Inbound, Reply};

pub async fn upgrade(
    AxumState(app): AxumState<ActiveNowState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let Some(refused) = refuse_upgrade(&app, &headers) {
        return refused;
    }
    let room = match super::parse_client_room(query.get("room").map(String::as_str).unwrap_or("")) {
        Ok(room) => room,
        Err(e) => {
            app.metrics.upgrades_refused.inc();
            return http_error(
                StatusCode::BAD_REQUEST,
                crate::close::code::BAD_ROOM,
                format!("room: {e}"),
            );
        }
    };
    let (identity, proof) = match identify(&app, &query, &headers) {
        Ok(found) => found,
        Err(refused) => return refused.into_response(),
    };
    // Identity before the upgrade check: a plain GET learns that it needs a token.
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    let tracker = app.sockets.clone();
    let mut upgrade = ws::configure(upgrade, &app);
    if let Some(protocol) = proof.as_ref().and_then(|p| p.select_protocol.clone()) {
        upgrade = upgrade.protocols([protocol]);
    }
    upgrade.on_upgrade(move |socket| tracker.track_future(run(app, socket, room, identity, proof)))
}

/// The identity of a room or visitors socket: with CLIENT_AUTH=jwt the token's subject (a
/// different `socket_session_id` / `x-socket-session-id` is refused with 403); otherwise
/// the one the client names, or a random one.
pub(super) fn identify(
    app: &ActiveNowState,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<(Identity, Option<Proof>), Refusal> {
    let named = match session_id(
        headers,
        query.get("socket_session_id").map(String::as_str),
        app.settings.max_session_id_bytes,
    ) {
        Ok(id) => id,
        Err(e) => {
            app.metrics.upgrades_refused.inc();
            return Err(Refusal {
                status: StatusCode::BAD_REQUEST,
                code: crate::close::code::BAD_SESSION_ID,
                message: e,
            });
        }
    };
    match client_auth::upgrade(app, query, headers)? {
        Some(proof) => Ok((
            client_auth::claimed(app, &proof, named.as_ref())?,
            Some(proof),
        )),
        None => Ok((named.unwrap_or_else(random_session_id), None)),
    }
}

/// The socket's life. A plain function returning an `async move` block, not an `async fn`:
/// an `async fn` keeps each argument twice in its state (the argument and the local it is
/// moved into), and this state is the socket task's size for the socket's whole life. The
/// join and the hello are boxed for the same reason: their state is gone once the socket is
/// live.
#[allow(clippy::manual_async_fn)]
fn run(
    app: ActiveNowState,
    mut socket: WebSocket,
    room: Room,
    identity: Identity,
    proof: Option<Proof>,
) -> impl std::future::Future<Output = ()> + Send {
    async move {
        let _open = crate::metrics::OpenSocket::new(&app.metrics.sockets.rooms);
        let conn = app.engine.connect(Liveness::Heartbeat {
            ttl: app.settings.presence_ttl(),
        });
        if Box::pin(join_and_hello(&app, &conn, &mut socket, room, &identity)).await {
            let inbound = RoomInbound {
                conn: &conn,
                max_session_id_bytes: app.settings.max_session_id_bytes,
                proven: proof.as_ref().map(|p| p.user.clone()),
            };
            let mut inbound = Expiring::new(&app, proof.as_ref(), inbound);
            ws::drive(&mut socket, conn.outbox(), &app, &mut inbound).await;
        }
        conn.disconnect().await;
    }
}

/// Joins the room and sends the hello; false when the socket is done (refused, failed, or
/// gone), after telling the client why.
async fn join_and_hello(
    app: &ActiveNowState,
    conn: &Connection,
    socket: &mut WebSocket,
    room: Room,
    identity: &Identity,
) -> bool {
    let joined = conn
        .join(
            room,
            identity.clone(),
            State::new(),
            app.renderers.room.clone(),
            app.settings.room_limit(),
        )
        .await;
    match joined {
        Ok(t) => {
            let ttl = app.settings.presence_ttl().as_secs().max(1);
            if ws::send_frame(socket, codec::hello(identity.as_str(), ttl, t.count))
                .await
                .is_err()
            {
                return false;
            }
            conn.outbox().told_count(t.version, t.count);
            true
        }
        Err(EngineError::RoomFull { limit }) => {
            let msg = format!("room holds {limit} members (MAX_ROOM_USERS)");
            let _ = ws::send_frame(socket, codec::error(code::ROOM_FULL, &msg)).await;
            ws::send_close(socket, reason::ROOM_FULL).await;
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "room join failed");
            join_failed(socket).await;
            false
        }
    }
}

/// Tells the client its join failed (a store error: retry) and closes the socket.
pub(super) async fn join_failed(socket: &mut WebSocket) {
    let _ = ws::send_frame(socket, codec::error(code::INTERNAL, "join failed; retry")).await;
    ws::send_close(socket, reason::JOIN_FAILED).await;
}

/// Client messages of a room socket.
pub(super) struct RoomInbound<'a> {
    pub conn: &'a Connection,
    pub max_session_id_bytes: usize,
    /// CLIENT_AUTH=jwt: the token's subject, the only id `updateSid` may name.
    pub proven: Option<Identity>,
}

impl Inbound for RoomInbound<'_> {
    async fn on_text(&mut self, text: &str) -> Reply {
        let result = match codec::decode(text) {
            Ok(ClientMessage::Heartbeat) => self.conn.heartbeat().await,
            Ok(ClientMessage::UpdateSid(id)) => {
                let Ok(identity) = Identity::parse(&id, self.max_session_id_bytes) else {
                    let msg = format!(
                        "session_id must be 1-{} bytes without control characters",
                        self.max_session_id_bytes
                    );
                    return Reply::Frame(codec::error(code::BAD_MESSAGE, &msg));
                };
                if self.proven.as_ref().is_some_and(|p| *p != identity) {
                    return Reply::Frame(codec::error(
                        code::IDENTITY_MISMATCH,
                        "CLIENT_AUTH=jwt: the identity is the token's subject",
                    ));
                }
                self.conn
                    .heartbeat()
                    .await
                    .and(self.conn.rekey(identity).await)
            }
            Err((code, message)) => return Reply::Frame(codec::error(code, &message)),
        };
        match result {
            Ok(()) => Reply::Nothing,
            Err(e) => Reply::Frame(codec::error(code::INTERNAL, &e.to_string())),
        }
    }

    fn error_frame(&self, code: &'static str, message: &str) -> Bytes {
        codec::error(code, message)
    }
}
