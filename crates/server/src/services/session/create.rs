//! Creating a push session: the creator's per-IP rate and live-session cap (the page is
//! unauthenticated; the app's back end, with API_KEY, is exempt), then `SESSION_MAX_ACTIVE`
//! in the store.

use std::net::IpAddr;

use activenow_engine::clock;
use activenow_engine::sessions::{SessionState, PENDING};
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::error::{unavailable, SessionError};
use crate::ids::random_session_id;
use crate::services::session::SessionsState;
use crate::transport::client_ip::ClientIp;
use crate::transport::per_ip;

/// `SESSION_CREATES_PER_IP_PER_SECOND`: pages create sessions unauthenticated, so each IP
/// gets a rate; the app's back end (with API_KEY) is exempt. The IP whose
/// `SESSION_MAX_PER_IP` the session counts toward: `None` for the back end.
pub(super) fn admit_creation(
    app: &SessionsState,
    headers: &HeaderMap,
    client: ClientIp,
) -> Result<Option<IpAddr>, SessionError> {
    if crate::api_key::check(&app.settings.api_key, headers).is_ok() {
        return Ok(None);
    }
    if per_ip::allow(&app.limits.session_creates, client.0) {
        return Ok(Some(client.0));
    }
    app.metrics.per_ip_refused.inc();
    Err(SessionError(
        StatusCode::TOO_MANY_REQUESTS,
        "too many sessions created from this address (SESSION_CREATES_PER_IP_PER_SECOND); retry later"
            .into(),
    ))
}

pub(super) async fn new_session(
    app: &SessionsState,
    creator: Option<IpAddr>,
    kind: String,
    ttl_secs: u64,
    info: Value,
) -> Result<SessionState, SessionError> {
    let now = clock::now_ms();
    let s = &app.settings;
    // The session holds its place in SESSION_MAX_ACTIVE until then, and its creator's too.
    let until_ms = now + ttl_secs * 1000 + s.session_retention.saturating_mul(1000);
    let live = app.limits.live_sessions.as_ref().zip(creator);
    if let Some((live, ip)) = live {
        if !live.acquire(ip, now, until_ms) {
            app.metrics.per_ip_refused.inc();
            return Err(SessionError(
                StatusCode::TOO_MANY_REQUESTS,
                "too many live sessions from this address (SESSION_MAX_PER_IP); retry later".into(),
            ));
        }
    }
    let created = store_session(app, now, kind, ttl_secs, info).await;
    if created.is_err() {
        if let Some((live, ip)) = live {
            live.release(ip, until_ms);
        }
    }
    created
}

async fn store_session(
    app: &SessionsState,
    now: u64,
    kind: String,
    ttl_secs: u64,
    info: Value,
) -> Result<SessionState, SessionError> {
    let state = SessionState {
        id: random_session_id().as_str().to_owned(),
        kind,
        status: PENDING.into(),
        created_ms: now,
        expires_ms: now + ttl_secs * 1000,
        info,
        finished: false,
        pushes: Vec::new(),
        seq: 0,
    };
    let s = &app.settings;
    let sessions = &app.sessions;
    let created = sessions
        .timed(sessions.store.create(
            state.clone(),
            s.session_max_active,
            s.session_retention.saturating_mul(1000),
        ))
        .await
        .map_err(unavailable)?;
    if !created {
        return Err(SessionError(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many sessions (SESSION_MAX_ACTIVE); retry later".into(),
        ));
    }
    Ok(state)
}
