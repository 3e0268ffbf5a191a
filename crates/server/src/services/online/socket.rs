//! `GET /api/online/ws?playerId=P`: the ping socket. The client sends `{"type":"ping"}` about
//! every second and gets `{"type":"pong","ts":ms}`. Opening it marks the player online; while
//! it is open the player stays online. `ONLINE_PING_TIMEOUT_MS` without a ping logs the player
//! out (on every node) and closes the socket. When the client goes away instead, the player's
//! HTTP connection takes over for `ONLINE_TTL`, so HTTP heartbeats keep it online.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::transport::websocket::{WebSocket, WebSocketUpgrade, WebSocketUpgradeRejection};
use activenow_engine::records::Login;
use activenow_engine::{clock, Identity, Liveness, State as EngineState};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use tokio::time::Instant;

use super::http::check_player_id;
use super::local::SocketSlot;
use crate::client_auth::{self, Expiring, Proof};
use crate::close::{code, reason};
use crate::services::online::OnlineState;
use crate::transport::admission::refuse_upgrade;
use crate::transport::client_ip::ClientIp;
use crate::transport::ws::{self, Inbound, Reply};

pub async fn upgrade(
    State(app): State<OnlineState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ClientIp(client): ClientIp,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let Some(refused) = refuse_upgrade(&app, &headers) {
        return refused;
    }
    let proof = match client_auth::upgrade(&app, &query, &headers) {
        Ok(p) => p,
        Err(refused) => return refused.into_response(),
    };
    let id = query.get("playerId").map(String::as_str);
    // With CLIENT_AUTH=jwt the player is the token's subject; playerId may be left out.
    let player = match (id, &proof) {
        (None, Some(proof)) => proof.user.clone(),
        (id, _) => match check_player_id(id.unwrap_or(""), app.settings.max_session_id_bytes) {
            Ok(p) => p,
            Err(e) => {
                app.metrics.upgrades_refused.inc();
                return e.into_response();
            }
        },
    };
    if let Some(proof) = &proof {
        if let Err(refused) = client_auth::claimed(&app, proof, Some(&player)) {
            return refused.into_response();
        }
    }
    let ip = client.to_string();
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
    upgrade.on_upgrade(move |socket| tracker.track_future(run(app, socket, player, ip, proof)))
}

fn frame(v: serde_json::Value) -> Bytes {
    Bytes::from(v.to_string())
}

fn error(code: &str, message: &str) -> Bytes {
    frame(serde_json::json!({"type": "error", "code": code, "message": message}))
}

async fn run(
    app: OnlineState,
    mut socket: WebSocket,
    player: Identity,
    ip: String,
    proof: Option<Proof>,
) {
    let _open = crate::metrics::OpenSocket::new(&app.metrics.sockets.online);
    let online = app.online.clone();
    let login = online.records.login(Login {
        player: &player,
        ip: &ip,
        name: None,
        now_ms: clock::now_ms(),
        keep_online: true,
        max_online: app.settings.online_max_players,
    });
    let conn = app.engine.connect(Liveness::Socket);
    let joined = match online.timed(login).await {
        Ok(None) => {
            let full = error(
                code::SERVER_FULL,
                "too many players online (ONLINE_MAX_PLAYERS); retry later",
            );
            let _ = ws::send_frame(&mut socket, full).await;
            ws::send_close(&mut socket, reason::SERVER_FULL).await;
            conn.disconnect().await;
            return;
        }
        Ok(Some(_)) => conn
            .join(
                online.room.clone(),
                player.clone(),
                EngineState::new(),
                online.silent.clone(),
                None,
            )
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = joined {
        tracing::warn!(error = %e, %player, "ping socket login failed");
        let _ = ws::send_frame(&mut socket, error(code::INTERNAL, "login failed; retry")).await;
        ws::send_close(&mut socket, reason::LOGIN_FAILED).await;
        conn.disconnect().await;
        return;
    }
    let slot = online.local.add_socket(&player, conn.outbox().clone());
    let started = Instant::now();
    let last_ping = AtomicU64::new(0);
    let timeout = Duration::from_millis(app.settings.online_ping_timeout_ms);
    let inbound = PingInbound {
        slot: &slot,
        started,
        last_ping: &last_ping,
    };
    let mut inbound = Expiring::new(&app, proof.as_ref(), inbound);
    let timed_out = tokio::select! {
        _ = ws::drive(&mut socket, conn.outbox(), &app, &mut inbound) => false,
        _ = silence(started, &last_ping, timeout) => true,
    };
    if timed_out {
        online.metrics.ping_timeouts.inc();
        if let Err(e) = online.logout(&player).await {
            tracing::warn!(error = %e, %player, "logging out a silent player failed");
        }
        ws::send_close(&mut socket, reason::PING_TIMEOUT).await;
    } else if !slot.kicked.load(Ordering::Relaxed) && !app.shutdown.is_cancelled() {
        // The client went away (network change, reload): hand over to HTTP heartbeats.
        if let Err(e) = online.refresh_http(&player).await {
            tracing::warn!(error = %e, %player, "handing over to HTTP heartbeats failed");
        }
    }
    online.local.remove_socket(&player, &slot);
    // No leave grace: the hand-over to HTTP heartbeats above is online status's own.
    conn.disconnect_now().await;
}

/// Resolves once `timeout` passed since the last ping (or the start).
async fn silence(started: Instant, last_ping: &AtomicU64, timeout: Duration) {
    loop {
        let last = started + Duration::from_millis(last_ping.load(Ordering::Relaxed));
        let due = last + timeout;
        if Instant::now() >= due {
            return;
        }
        tokio::time::sleep_until(due).await;
    }
}

struct PingInbound<'a> {
    slot: &'a SocketSlot,
    started: Instant,
    last_ping: &'a AtomicU64,
}

#[derive(Deserialize)]
struct Message {
    #[serde(rename = "type")]
    kind: Option<String>,
}

impl Inbound for PingInbound<'_> {
    async fn on_text(&mut self, text: &str) -> Reply {
        let msg: Message = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(_) => return Reply::Frame(error(code::BAD_JSON, "send a JSON object")),
        };
        match msg.kind.as_deref() {
            Some("ping") => {
                let since = self.started.elapsed().as_millis() as u64;
                self.last_ping.store(since, Ordering::Relaxed);
                self.slot.pinged.store(true, Ordering::Relaxed);
                Reply::Frame(frame(
                    serde_json::json!({"type": "pong", "ts": clock::now_ms()}),
                ))
            }
            _ => Reply::Frame(error(
                code::UNKNOWN_TYPE,
                "the only message is {\"type\":\"ping\"}",
            )),
        }
    }

    fn error_frame(&self, code: &'static str, message: &str) -> Bytes {
        error(code, message)
    }
}
