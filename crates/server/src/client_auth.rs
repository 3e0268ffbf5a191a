//! CLIENT_AUTH: who a client is (docs/security.md).
//!
//! With `off` (the default, the seeds' behaviour) the ids clients send are taken as given:
//! they are bearer credentials. With `jwt` every endpoint where a client claims an identity
//! needs a token signed by the application's back end, verified by the channels protocol's
//! [`Verifier`](crate::protocol::channels::Verifier) (same keys, algorithm pinning, leeway,
//! `crit` refusal); the identity is the token's subject and never a client-chosen value.
//! `Authorization: Bearer <API_KEY>` makes an HTTP caller the application's back end, which
//! acts for any identity in both modes.
//!
//! Open sockets expire with their token: [`Expiring`] wraps a protocol's [`Inbound`] so that
//! the socket loop closes it with 4001 at `exp` + leeway, unless a
//! `{"type":"refresh","token":...}` for the same subject moved the deadline.

use std::collections::HashMap;

use activenow_engine::Identity;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{json, Value};

use crate::close::{auth_code, code};
use crate::error::http_error;
use crate::host::Host;
use crate::protocol::channels::auth::AuthError;
use crate::protocol::channels::token;
use crate::transport::ws::{Inbound, Reply};

/// A verified client token.
#[derive(Clone, Debug)]
pub struct Proof {
    /// The token's `sub` (or `user_id`): the only identity this client may act as.
    pub user: Identity,
    /// `exp` + JWT_LEEWAY, wall-clock milliseconds; `None` when the token has no `exp`.
    pub expires_at_ms: Option<u64>,
    /// The subprotocol to answer with when the token came in `Sec-WebSocket-Protocol`.
    pub select_protocol: Option<String>,
}

/// Who made an HTTP request.
#[derive(Clone, Debug, PartialEq)]
pub enum Caller {
    /// CLIENT_AUTH=off and no API key: ids in the request are taken as given.
    Unproven,
    /// CLIENT_AUTH=jwt and no credentials at all: may read public data only.
    Anonymous,
    /// `Authorization: Bearer <API_KEY>`: the application's back end, for any identity.
    Server,
    /// A client that proved this identity with a token.
    User(Identity),
}

impl Caller {
    /// May this caller act as `id` (update, heartbeat, log out) and read its private fields?
    pub fn may_act_as(&self, id: &Identity) -> bool {
        match self {
            Caller::Unproven | Caller::Server => true,
            Caller::Anonymous => false,
            Caller::User(user) => user == id,
        }
    }

    /// The refusal for acting as `id`, if refused.
    pub fn refuse_acting_as(&self, id: &Identity) -> Option<Refusal> {
        match self {
            _ if self.may_act_as(id) => None,
            Caller::Anonymous => Some(Refusal::from(missing())),
            _ => Some(mismatch(id)),
        }
    }
}

/// A refused request: 401 (no or bad token) or 403 (another identity than the token's).
#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl From<AuthError> for Refusal {
    fn from(e: AuthError) -> Refusal {
        Refusal {
            status: StatusCode::UNAUTHORIZED,
            code: e.code,
            message: e.message,
        }
    }
}

impl IntoResponse for Refusal {
    /// `{"error": code, "message": ...}`; a 401 carries an RFC 6750 challenge.
    fn into_response(self) -> Response {
        let status = self.status;
        let challenge = match self.code {
            auth_code::MISSING | auth_code::NOT_CONFIGURED => HeaderValue::from_static("Bearer"),
            _ => HeaderValue::from_static("Bearer error=\"invalid_token\""),
        };
        let mut resp = http_error(status, self.code, self.message);
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        resp
    }
}

fn missing() -> AuthError {
    AuthError {
        code: auth_code::MISSING,
        message: "CLIENT_AUTH=jwt: pass a JWT as ?token=, Authorization: Bearer or \
                  Sec-WebSocket-Protocol"
            .into(),
    }
}

/// 403: the request names `id`, which is not the caller's proven identity.
pub fn mismatch(id: &Identity) -> Refusal {
    Refusal {
        status: StatusCode::FORBIDDEN,
        code: code::IDENTITY_MISMATCH,
        message: format!("this token does not prove the identity {:?}", id.as_str()),
    }
}

/// Verifies a token now.
pub fn verify(host: &Host, token: &str) -> Result<Proof, AuthError> {
    let principal = host.verifier.verify(token, token::now_ms())?;
    Ok(Proof {
        user: principal.user,
        expires_at_ms: principal.expires_at_ms,
        select_protocol: None,
    })
}

/// The proof of a WebSocket upgrade: `None` with CLIENT_AUTH=off; with `jwt`, the verified
/// token of `?token=`, `Authorization: Bearer` or `Sec-WebSocket-Protocol`, or a 401.
pub fn upgrade(
    host: &Host,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Option<Proof>, Refusal> {
    if !host.settings.client_auth_jwt() {
        return Ok(None);
    }
    let refused = |e: AuthError| {
        host.metrics.upgrades_refused.inc();
        Refusal::from(e)
    };
    let presented = token::presented(query.get("token").map(String::as_str), headers)
        .ok_or_else(|| refused(missing()))?;
    let mut proof = verify(host, &presented.token).map_err(refused)?;
    proof.select_protocol = presented.select_protocol;
    Ok(Some(proof))
}

/// A proven upgrade whose request also names an identity (`socket_session_id`, `playerId`)
/// must name the token's subject: 403 otherwise. Returns the identity to use.
pub fn claimed(host: &Host, proof: &Proof, named: Option<&Identity>) -> Result<Identity, Refusal> {
    match named {
        Some(id) if *id != proof.user => {
            host.metrics.upgrades_refused.inc();
            Err(mismatch(id))
        }
        _ => Ok(proof.user.clone()),
    }
}

/// Who made an HTTP request: the API key first, then (CLIENT_AUTH=jwt) a bearer token. A
/// token that does not verify is a 401 even where anonymous calls are allowed.
pub fn http_caller(host: &Host, headers: &HeaderMap) -> Result<Caller, Refusal> {
    if crate::api_key::check(&host.settings.api_key, headers).is_ok() {
        return Ok(Caller::Server);
    }
    if !host.settings.client_auth_jwt() {
        return Ok(Caller::Unproven);
    }
    match token::presented(None, headers) {
        None => Ok(Caller::Anonymous),
        Some(p) => Ok(Caller::User(verify(host, &p.token)?.user)),
    }
}

/// A protocol's [`Inbound`] on a socket whose token expires: answers `refresh` messages and
/// tells the socket loop when to close with 4001. Without a proof it only forwards.
pub struct Expiring<'a, I> {
    host: &'a Host,
    inner: I,
    user: Option<Identity>,
    expires_at_ms: Option<u64>,
}

impl<'a, I: Inbound> Expiring<'a, I> {
    pub fn new(host: &'a Host, proof: Option<&Proof>, inner: I) -> Self {
        Expiring {
            host,
            inner,
            user: proof.map(|p| p.user.clone()),
            expires_at_ms: proof.and_then(|p| p.expires_at_ms),
        }
    }

    /// A channels socket: always token-bound, whatever CLIENT_AUTH says.
    pub fn with_user(host: &'a Host, user: Identity, expires_at_ms: Option<u64>, inner: I) -> Self {
        Expiring {
            host,
            inner,
            user: Some(user),
            expires_at_ms,
        }
    }

    fn refresh(&mut self, token: Option<&str>) -> Reply {
        let Some(token) = token else {
            return Reply::Frame(
                self.inner
                    .error_frame(code::BAD_MESSAGE, "refresh needs a token (a JWT string)"),
            );
        };
        let proof = match verify(self.host, token) {
            Ok(p) => p,
            Err(e) => return Reply::Frame(self.inner.error_frame(e.code, &e.message)),
        };
        if self.user.as_ref() != Some(&proof.user) {
            return Reply::Frame(self.inner.error_frame(
                code::IDENTITY_MISMATCH,
                "a refresh token must have the same subject as the socket's token",
            ));
        }
        self.expires_at_ms = proof.expires_at_ms;
        Reply::Frame(refreshed(proof.expires_at_ms))
    }
}

/// `{"type":"refreshed","expiresAt":ms|null}`.
fn refreshed(expires_at_ms: Option<u64>) -> Bytes {
    Bytes::from(json!({"type": "refreshed", "expiresAt": expires_at_ms}).to_string())
}

/// `Some(token?)` when `text` is a `refresh` message.
fn refresh_message(text: &str) -> Option<Option<String>> {
    // Most frames are heartbeats and publishes: a substring scan spares them a second parse.
    if !text.contains("\"refresh\"") {
        return None;
    }
    let v: Value = serde_json::from_str(text).ok()?;
    if v.get("type").and_then(Value::as_str) != Some("refresh") {
        return None;
    }
    Some(v.get("token").and_then(Value::as_str).map(str::to_owned))
}

impl<I: Inbound> Inbound for Expiring<'_, I> {
    async fn on_text(&mut self, text: &str) -> Reply {
        if self.user.is_some() {
            if let Some(token) = refresh_message(text) {
                return self.refresh(token.as_deref());
            }
        }
        self.inner.on_text(text).await
    }

    fn error_frame(&self, code: &'static str, message: &str) -> Bytes {
        self.inner.error_frame(code, message)
    }

    fn expires_at_ms(&self) -> Option<u64> {
        self.expires_at_ms
    }
}

/// Logged once at start: with CLIENT_AUTH=off on a reachable address anyone can act as
/// anyone whose id they learn.
pub fn warn_if_open(settings: &crate::config::Settings) {
    if settings.client_auth_jwt() {
        return;
    }
    let loopback = settings
        .bind
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        tracing::warn!(
            bind = %settings.bind,
            "CLIENT_AUTH=off on a non-loopback address: session ids, userIds and playerIds are \
             bearer credentials, and anyone who learns one can act as that client; set \
             CLIENT_AUTH=jwt for a public deployment (docs/security.md)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_messages() {
        assert_eq!(refresh_message(r#"{"type":"hb"}"#), None);
        assert_eq!(
            refresh_message(r#"{"type":"refresh","token":"a.b.c"}"#),
            Some(Some("a.b.c".into()))
        );
        assert_eq!(refresh_message(r#"{"type":"refresh"}"#), Some(None));
        assert_eq!(
            refresh_message(r#"{"type":"publish","data":{"x":"refresh"}}"#),
            None
        );
    }

    #[test]
    fn callers() {
        let u1 = Identity::new("u1");
        let u2 = Identity::new("u2");
        assert!(Caller::Server.may_act_as(&u2));
        assert!(Caller::Unproven.may_act_as(&u2));
        assert!(!Caller::Anonymous.may_act_as(&u1));
        assert!(Caller::User(u1.clone()).may_act_as(&u1));
        let refused = Caller::User(u1.clone()).refuse_acting_as(&u2).unwrap();
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        let refused = Caller::Anonymous.refuse_acting_as(&u2).unwrap();
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    }
}
