//! `GET /v1/ws/qr/{id}` (alias `/v1/ws/session/{id}`): the waiting socket. 404 before the
//! upgrade for an unknown session; then `{"status":"connected","message":"Waiting for
//! confirmation"}`, the pushes already made (a push that found no socket), and every later
//! push; a closing push (confirmed, rejected, expired, `close: true`) closes the socket with
//! 1000. The server pings every `SESSION_PING_INTERVAL` seconds; client messages are ignored.

use std::time::Duration;

use crate::transport::websocket::{Message, WebSocket, WebSocketUpgrade};
use activenow_engine::outbox::CloseCause;
use activenow_engine::sessions::session_room;
use activenow_engine::{Identity, Liveness, Outgoing, State as EngineState};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::error::{not_found, unavailable};
use super::http::session_id;
use super::{expired_message, parse_rendered, Waiting};
use crate::close::reason;
use crate::services::session::SessionsState;
use crate::transport::admission::refuse_upgrade;
use crate::transport::ws;

pub async fn upgrade(
    State(app): State<SessionsState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Some(refused) = refuse_upgrade(&app, &headers) {
        return refused;
    }
    let Some(id) = session_id(&id) else {
        app.metrics.upgrades_refused.inc();
        return not_found().into_response();
    };
    match app.sessions.timed(app.sessions.store.get(&id)).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            app.metrics.upgrades_refused.inc();
            return not_found().into_response();
        }
        Err(e) => return unavailable(e).into_response(),
    }
    let tracker = app.sockets.clone();
    ws::configure(upgrade, &app)
        .on_upgrade(move |socket| tracker.track_future(run(app, socket, id)))
}

fn json(v: &serde_json::Value) -> Bytes {
    Bytes::from(v.to_string())
}

async fn run(app: SessionsState, mut socket: WebSocket, id: String) {
    let _open = crate::metrics::OpenSocket::new(&app.metrics.sockets.sessions);
    let sessions = app.sessions.clone();
    let _waiting = Waiting::new(&sessions.waiting);
    let conn = app.engine.connect(Liveness::Socket);
    let identity = Identity::new(conn.id().as_str());
    let joined = conn
        .join(
            session_room(&id),
            identity,
            EngineState::new(),
            sessions.renderer.clone(),
            None,
        )
        .await;
    if joined.is_ok() {
        serve(&app, &mut socket, &conn, &id).await;
    } else {
        ws::send_close(&mut socket, reason::SESSION_UNAVAILABLE).await;
    }
    // No leave grace: a waiter is not a member anyone counts.
    conn.disconnect_now().await;
}

async fn serve(
    app: &SessionsState,
    socket: &mut WebSocket,
    conn: &activenow_engine::Connection,
    id: &str,
) {
    let connected =
        serde_json::json!({"status": "connected", "message": "Waiting for confirmation"});
    if ws::send_frame(socket, json(&connected)).await.is_err() {
        return;
    }
    // Subscribed first, then read: a push made in between arrives both ways and the second
    // copy is skipped by its number.
    let mut last_seq = 0;
    match app.sessions.timed(app.sessions.store.get(id)).await {
        Ok(Some(state)) => {
            for push in state.pushes {
                last_seq = push.seq;
                if ws::send_frame(socket, json(&push.message)).await.is_err() {
                    return;
                }
                if push.close {
                    ws::send_close(socket, reason::DONE).await;
                    return;
                }
            }
        }
        Ok(None) => {
            let _ = ws::send_frame(socket, json(&expired_message())).await;
            ws::send_close(socket, reason::DONE).await;
            return;
        }
        Err(_) => {
            ws::send_close(socket, reason::SESSION_UNAVAILABLE).await;
            return;
        }
    }
    let every = app.settings.session_ping_interval;
    let mut ping = (every > 0).then(|| {
        let every = Duration::from_secs(every);
        tokio::time::interval_at(tokio::time::Instant::now() + every, every)
    });
    // The client has nothing to say here but pings and pongs; they count toward the rate.
    let mut rate = crate::transport::rate::RateLimit::new(app.settings.max_messages_per_second);
    loop {
        tokio::select! {
            biased;
            _ = app.shutdown.cancelled() => {
                ws::send_close(socket, reason::SERVER_RESTART).await;
                return;
            }
            out = conn.outbox().next() => match out {
                Outgoing::Frame(frame) => {
                    let Some((seq, closing, message)) = parse_rendered(&frame) else { continue };
                    if seq <= last_seq {
                        continue;
                    }
                    last_seq = seq;
                    if ws::send_frame(socket, message).await.is_err() {
                        return;
                    }
                    if closing {
                        ws::send_close(socket, reason::DONE).await;
                        return;
                    }
                }
                Outgoing::Close(CloseCause::SlowConsumer) => {
                    ws::send_close(socket, reason::SLOW_CONSUMER).await;
                    return;
                }
                Outgoing::Close(CloseCause::Finished) => {
                    ws::send_close(socket, reason::DONE).await;
                    return;
                }
                Outgoing::Close(CloseCause::Kicked) => {
                    ws::send_close(socket, crate::close::reason::KICKED).await;
                    return;
                }
            },
            msg = socket.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {
                    if let crate::transport::rate::Verdict::Drop(_) = rate.check() {
                        app.metrics.rate_limited.inc();
                        ws::send_close(socket, reason::TOO_MANY_MESSAGES).await;
                        return;
                    }
                }
            },
            _ = async {
                match ping.as_mut() {
                    Some(p) => { p.tick().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {
                let ping = socket.send(Message::Ping(Bytes::new()));
                if !matches!(tokio::time::timeout(app.settings.slow_consumer_timeout(), ping).await, Ok(Ok(()))) {
                    return;
                }
            }
        }
    }
}
