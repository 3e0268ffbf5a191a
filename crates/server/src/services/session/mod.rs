//! Session push (seed 4, SPEC §8): a web page waits on a socket for one outcome (QR login,
//! payment, pairing); the app's back end (with `API_KEY`) pushes it. Routes and messages are
//! those of the reference (PLDao/rust-frame) plus the general `/v1/sessions` form.
//!
//! Session state and expiry live behind the engine's [`SessionStore`]; every push is numbered
//! and kept there, then published to the session's internal room, so it reaches the waiting
//! socket on whichever node holds it, and a socket that connects later replays it. Sockets
//! skip pushes they already have by number.

mod create;
mod error;
pub mod http;
mod socket;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use activenow_engine::sessions::session_room;
use activenow_engine::{
    clock, Engine, Publication, Renderer, Room, RoomEvent, SessionPush, SessionStore, StoreError,
};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::host::Host;
use crate::metrics::WriteMetrics;

/// What the session-push handlers take: the host and the service.
#[derive(Clone)]
pub struct SessionsState {
    pub host: Host,
    pub sessions: Sessions,
}

impl std::ops::Deref for SessionsState {
    type Target = Host;
    fn deref(&self) -> &Host {
        &self.host
    }
}

/// The routes, for any app state this adapter's state can be taken from.
pub fn routes<S>() -> Router<S>
where
    SessionsState: axum::extract::FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/v1/qr-login/generate", post(http::generate))
        .route("/v1/qr-login/status/{session_id}", get(http::status))
        .route("/v1/qr-login/scan", post(http::scan))
        .route("/v1/qr-login/confirm", post(http::confirm))
        .route("/v1/qr-login/reject", post(http::reject))
        .route("/v1/sessions", post(http::create))
        .route(
            "/v1/sessions/{session_id}",
            get(http::status).delete(http::remove),
        )
        .route("/v1/sessions/{session_id}/notify", post(http::notify))
        .route("/v1/ws/qr/{session_id}", get(socket::upgrade))
        .route("/v1/ws/session/{session_id}", get(socket::upgrade))
}

const PUSH: &str = "push";

/// Renders a push for the waiting sockets as `<seq>\n<close 0|1>\n<message JSON>`: the socket
/// loop strips the header (to skip a push it already replayed) and sends the JSON.
struct PushRenderer;

impl Renderer for PushRenderer {
    fn render(&self, _room: &Room, event: &RoomEvent) -> Option<Bytes> {
        let RoomEvent::Publication(p) = event else {
            return None;
        };
        if p.event != PUSH {
            return None;
        }
        let push: SessionPush = serde_json::from_value(p.data.clone()).ok()?;
        let mut out = format!("{}\n{}\n", push.seq, u8::from(push.close)).into_bytes();
        serde_json::to_writer(&mut out, &push.message).ok()?;
        Some(Bytes::from(out))
    }
}

/// Splits a rendered push into (seq, close, message bytes).
fn parse_rendered(frame: &Bytes) -> Option<(u64, bool, Bytes)> {
    let text = std::str::from_utf8(frame).ok()?;
    let (seq, rest) = text.split_once('\n')?;
    let (close, _) = rest.split_once('\n')?;
    let offset = seq.len() + close.len() + 2;
    Some((seq.parse().ok()?, close == "1", frame.slice(offset..)))
}

pub fn expired_message() -> serde_json::Value {
    json!({"status": "expired", "message": "QR code expired"})
}

/// Cheap to clone: the adapter's state.
#[derive(Clone)]
pub struct Sessions(Arc<Inner>);

pub struct Inner {
    engine: Engine,
    store: Arc<dyn SessionStore>,
    renderer: Arc<dyn Renderer>,
    /// Sockets waiting on a session on this node.
    pub waiting: AtomicU64,
    max_pushes: usize,
    stop: CancellationToken,
}

impl std::ops::Deref for Sessions {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Sessions {
    /// Starts the expiry pass (every `SESSION_EXPIRY_CHECK_MS`).
    pub fn start(engine: &Engine, settings: &Settings) -> Sessions {
        let sessions = Sessions(Arc::new(Inner {
            engine: engine.clone(),
            store: engine.sessions().clone(),
            renderer: Arc::new(PushRenderer),
            waiting: AtomicU64::new(0),
            max_pushes: settings.session_max_pushes,
            stop: CancellationToken::new(),
        }));
        let every = Duration::from_millis(settings.session_expiry_check_ms);
        tokio::spawn(sessions.clone().run_expiry(every));
        sessions
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }

    async fn timed<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.engine.timed(call).await
    }

    /// Publishes a stored push to the session's sockets, wherever they are.
    async fn publish(&self, id: &str, push: &SessionPush) {
        let publication = Publication {
            event: PUSH.into(),
            data: serde_json::to_value(push).unwrap_or_default(),
            from: None,
            ts_ms: clock::now_ms(),
        };
        if let Err(e) = self
            .engine
            .publish(&session_room(id), publication, None)
            .await
        {
            // The push is stored: a socket connecting later still gets it.
            tracing::warn!(error = %e, session = id, "publishing a session push failed");
        }
    }

    async fn run_expiry(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let due = self
                .store
                .expire_due(clock::now_ms(), expired_message(), self.max_pushes);
            match self.timed(due).await {
                Ok(expired) => {
                    for (id, push) in expired {
                        self.publish(&id, &push).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "session expiry pass failed"),
            }
        }
    }
}

/// Counts a waiting socket for as long as it lives; dropping it is the one decrement, so
/// every way out of a socket task removes it exactly once.
struct Waiting<'a>(&'a AtomicU64);

impl<'a> Waiting<'a> {
    fn new(gauge: &'a AtomicU64) -> Waiting<'a> {
        gauge.fetch_add(1, Ordering::Relaxed);
        Waiting(gauge)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// This adapter's Prometheus lines.
impl WriteMetrics for Sessions {
    fn write_metrics(&self, out: &mut String) {
        let n = self.waiting.load(Ordering::Relaxed);
        out.push_str(&format!(
            "# HELP activenow_session_sockets Sockets waiting on a push session on this node.\n# TYPE activenow_session_sockets gauge\nactivenow_session_sockets {n}\n"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_pushes_round_trip() {
        let push = SessionPush {
            seq: 12,
            message: json!({"status": "confirmed", "web_token": "t"}),
            close: true,
        };
        let p = Publication {
            event: PUSH.into(),
            data: serde_json::to_value(&push).unwrap(),
            from: None,
            ts_ms: 0,
        };
        let frame = PushRenderer
            .render(&Room::internal("x"), &RoomEvent::Publication(p))
            .unwrap();
        let (seq, close, msg) = parse_rendered(&frame).unwrap();
        assert_eq!((seq, close), (12, true));
        let v: serde_json::Value = serde_json::from_slice(&msg).unwrap();
        assert_eq!(v, push.message);
    }
}
