//! CLIENT_AUTH=jwt on the Socket.IO hub: the handshake's `auth: {token}` (or the upgrade's
//! `?token=` / `Authorization: Bearer`), the `auth:refresh` event, and the expiry watch that
//! disconnects a socket whose token ran out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use activenow_engine::{clock, Identity};
use serde_json::{json, Value};
use socketioxide::extract::SocketRef;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::codec::ack_error;
use crate::client_auth::{self, Proof};
use crate::close::{auth_code, code};
use crate::host::Host;
use crate::protocol::channels::token;

/// The proven identity of one socket and when its token expires.
pub(crate) struct SocketAuth {
    pub user: Identity,
    // A std mutex: read and replaced without awaiting.
    expires_at_ms: Mutex<Option<u64>>,
    /// Wakes the expiry watch when a refresh moved the deadline.
    moved: Notify,
    /// Cancelled when the socket disconnects: ends the watch.
    pub closed: CancellationToken,
}

/// The handshake's token, verified: `Ok(None)` with CLIENT_AUTH=off. The error is the
/// `connect_error` message the client sees: the same code as the WebSocket endpoints' 401.
pub(super) fn handshake(
    app: &Host,
    s: &SocketRef,
    auth: Option<&Value>,
) -> Result<Option<Arc<SocketAuth>>, &'static str> {
    if !app.settings.client_auth_jwt() {
        return Ok(None);
    }
    let from_auth = auth
        .and_then(|a| a.get("token"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let parts = s.req_parts();
    let query_token = axum::extract::Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
        .ok()
        .and_then(|q| q.0.get("token").cloned());
    let token = from_auth
        .or_else(|| token::presented(query_token.as_deref(), &parts.headers).map(|p| p.token));
    let Some(token) = token else {
        app.metrics.upgrades_refused.inc();
        return Err(auth_code::MISSING);
    };
    match client_auth::verify(app, &token) {
        Ok(proof) => Ok(Some(Arc::new(SocketAuth::new(&proof)))),
        Err(e) => {
            app.metrics.upgrades_refused.inc();
            Err(e.code)
        }
    }
}

impl SocketAuth {
    fn new(proof: &Proof) -> SocketAuth {
        SocketAuth {
            user: proof.user.clone(),
            expires_at_ms: Mutex::new(proof.expires_at_ms),
            moved: Notify::new(),
            closed: CancellationToken::new(),
        }
    }

    fn expires_at_ms(&self) -> Option<u64> {
        *self.expires_at_ms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Disconnects the socket at its token's expiry (after an `auth:expired` event with
    /// `{code: "token_expired"}`), unless a refresh moved it; ends when the socket closes.
    pub fn watch(self: Arc<Self>, s: SocketRef) {
        if self.expires_at_ms().is_none() {
            return;
        }
        tokio::spawn(async move {
            loop {
                let Some(at) = self.expires_at_ms() else {
                    return;
                };
                let wait = std::time::Duration::from_millis(at.saturating_sub(clock::now_ms()));
                tokio::select! {
                    _ = self.closed.cancelled() => return,
                    _ = self.moved.notified() => continue,
                    _ = tokio::time::sleep(wait) => {
                        if self.expires_at_ms() != Some(at) {
                            continue;
                        }
                        let _ = s.emit(
                            "auth:expired",
                            &json!({"code": auth_code::EXPIRED, "message": "token has expired"}),
                        );
                        let _ = s.disconnect();
                        return;
                    }
                }
            }
        });
    }

    /// `auth:refresh {token}` -> `{ok:true, expiresAt}`: a token of the same subject moves
    /// the expiry.
    pub fn refresh(&self, app: &Host, data: &Value) -> Value {
        let Some(token) = data
            .get("token")
            .and_then(Value::as_str)
            .or_else(|| data.as_str())
        else {
            return ack_error(Some(code::BAD_MESSAGE), "auth:refresh needs {token}");
        };
        let proof = match client_auth::verify(app, token) {
            Ok(p) => p,
            Err(e) => return ack_error(Some(e.code), &e.message),
        };
        if proof.user != self.user {
            return ack_error(
                Some(code::IDENTITY_MISMATCH_ACK),
                "a refresh token must have the same subject as the socket's token",
            );
        }
        *self.expires_at_ms.lock().unwrap_or_else(|e| e.into_inner()) = proof.expires_at_ms;
        self.moved.notify_one();
        json!({"ok": true, "expiresAt": proof.expires_at_ms})
    }
}
