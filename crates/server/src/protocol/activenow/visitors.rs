//! `GET /v1/ws/web` and `GET /web`: the global visitors channel. A visitor is an identity
//! with at least one open visitor socket; it stays while the socket is open (no heartbeat).

use std::collections::HashMap;

use crate::transport::websocket::{WebSocket, WebSocketUpgrade, WebSocketUpgradeRejection};
use activenow_engine::{Connection, Liveness, Room, State};
use axum::extract::{Query, State as AxumState};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::codec;
use super::room::{identify, join_failed, RoomInbound};
use crate::client_auth::{Expiring, Proof};
use crate::protocol::activenow::ActiveNowState;
use crate::transport::admission::refuse_upgrade;
use crate::transport::ws;

pub async fn upgrade(
    AxumState(app): AxumState<ActiveNowState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let Some(refused) = refuse_upgrade(&app, &headers) {
        return refused;
    }
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
    upgrade.on_upgrade(move |socket| tracker.track_future(run(app, socket, identity, proof)))
}

/// The socket's life; see the room socket's `run` for why it is a function returning an
/// `async move` block with its join boxed.
#[allow(clippy::manual_async_fn)]
fn run(
    app: ActiveNowState,
    mut socket: WebSocket,
    identity: activenow_engine::Identity,
    proof: Option<Proof>,
) -> impl std::future::Future<Output = ()> + Send {
    async move {
        let _open = crate::metrics::OpenSocket::new(&app.metrics.sockets.visitors);
        if ws::send_frame(&mut socket, codec::gateway_connect())
            .await
            .is_err()
        {
            return;
        }
        let conn = app.engine.connect(Liveness::Socket);
        if Box::pin(join(&app, &conn, &mut socket, identity)).await {
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

/// Joins the visitors room; false (after telling the client) when the join failed.
async fn join(
    app: &ActiveNowState,
    conn: &Connection,
    socket: &mut WebSocket,
    identity: activenow_engine::Identity,
) -> bool {
    let joined = conn
        .join(
            Room::visitors(),
            identity,
            State::new(),
            app.renderers.visitors.clone(),
            None,
        )
        .await;
    match joined {
        Ok(t) => {
            // A new visitor's arrival reaches every visitor socket, this one included. Another
            // tab of a known visitor changes nothing for the others, but this socket still
            // learns the current count.
            if !t.identity_changed {
                let _ = conn.outbox().push(codec::visitor_online(t.count, t.ts_ms));
            }
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "visitor join failed");
            join_failed(socket).await;
            false
        }
    }
}
