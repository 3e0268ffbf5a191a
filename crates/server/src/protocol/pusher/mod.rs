//! The Pusher Channels protocol v7 (SPEC §12, docs/pusher.md): `pusher-js` and Laravel Echo
//! connect to `/app/{key}` unmodified, and the official server SDKs call the signed HTTP API
//! under `/apps/{id}/`.
//!
//! Every Pusher channel is an engine room, named `pusher:{app_id}:{channel}`: a subscription
//! is a join (presence channels as the signed `user_id`, with `user_info` as the state; other
//! channels as the socket id), so counts, one member per user across tabs and nodes, reaping
//! of dead nodes and Redis fan-out all come from the engine. The `pusher:` prefix is refused
//! by every other protocol that lets a client name a room ([`is_reserved_room`]), so nobody
//! reaches a private or presence channel's room without this module's signature check. This
//! module keeps no presence state of its own.
//!
//! - [`auth`]: channel signatures and HTTP request signing (HMAC-SHA256, MD5 body digests).
//! - [`codec`]: client frames, server frames, the channel name rule and [`PusherRenderer`].
//! - `handler`: the WebSocket upgrade and one function per client event (subscriptions,
//!   client events, `pusher:signin` and `#server-to-user-{id}`).
//! - `presence`: presence members from `channel_data`, and the members object.
//! - `http`: the REST API (`events`, `batch_events`, `channels`, `users`).

pub mod auth;
pub mod codec;
mod handler;
mod http;
mod presence;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use activenow_engine::{ConnId, Renderer, Room};
use axum::routing::{get, post};
use axum::Router;

use crate::app::AppState;
use crate::config::Settings;

pub use codec::PusherRenderer;

/// Every Pusher channel's room starts with this; other protocols refuse such room names.
pub const ROOM_PREFIX: &str = "pusher:";

/// Whether a client-supplied room name lies in the Pusher namespace, which only the Pusher
/// endpoint (after its signature check) may join.
pub fn is_reserved_room(name: &str) -> bool {
    name.starts_with(ROOM_PREFIX)
}

/// One Pusher app: its id (in HTTP paths), key (public, in the WebSocket URL) and secret.
#[derive(Clone, Debug)]
pub struct App {
    pub id: String,
    pub key: String,
    pub secret: String,
}

impl App {
    /// `pusher:{id}:` — the prefix of this app's rooms.
    pub fn room_prefix(&self) -> String {
        format!("{ROOM_PREFIX}{}:", self.id)
    }

    /// The engine room of a channel whose name passed [`codec::valid_channel`].
    pub fn room(&self, channel: &str) -> Option<Room> {
        Room::parse(&format!("{}{channel}", self.room_prefix())).ok()
    }
}

/// What the Pusher endpoints share.
pub struct Pusher {
    /// `None`: PUSHER_APP_ID / KEY / SECRET are not all set; both endpoints refuse.
    pub app: Option<App>,
    pub renderer: Arc<dyn Renderer>,
    /// Socket ids are `{node}.{sequence}`, digits only, as the Pusher SDKs validate them
    /// (`^\d+\.\d+$`); `node` is random per process so ids stay unique across nodes.
    node: u32,
    seq: AtomicU64,
}

/// Longest app id: the room prefix must leave room for a 164-character channel name.
const MAX_APP_ID_BYTES: usize = 64;

impl Pusher {
    pub fn new(settings: &Settings) -> Pusher {
        let (id, key, secret) = (
            settings.pusher_app_id.trim(),
            settings.pusher_app_key.trim(),
            settings.pusher_app_secret.as_str(),
        );
        let app = if id.is_empty() || key.is_empty() || secret.is_empty() {
            tracing::info!(
                "Pusher protocol (/app/{{key}}) disabled: set PUSHER_APP_ID, PUSHER_APP_KEY and PUSHER_APP_SECRET"
            );
            None
        } else if !valid_app_id(id) || !codec::valid_key(key) {
            tracing::error!("PUSHER_APP_ID or PUSHER_APP_KEY has characters outside [A-Za-z0-9_-]; Pusher protocol disabled");
            None
        } else {
            Some(App {
                id: id.to_owned(),
                key: key.to_owned(),
                secret: secret.to_owned(),
            })
        };
        Pusher {
            app,
            renderer: Arc::new(PusherRenderer),
            node: rand::random::<u32>() % 1_000_000_000,
            seq: AtomicU64::new(1),
        }
    }

    /// The app whose key is `key`.
    pub fn app_by_key(&self, key: &str) -> Option<&App> {
        self.app.as_ref().filter(|a| a.key == key)
    }

    /// The app whose id is `id`.
    pub fn app_by_id(&self, id: &str) -> Option<&App> {
        self.app.as_ref().filter(|a| a.id == id)
    }

    /// A new socket id, which is also the engine connection id.
    pub fn next_socket_id(&self) -> ConnId {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        ConnId::new(&format!("{}.{n}", self.node))
    }
}

/// `[A-Za-z0-9_-]{1,64}`: the id appears in room names and URL paths.
pub fn valid_app_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_APP_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/app/{key}", get(handler::upgrade))
        .route("/apps/{app_id}/events", post(http::events))
        .route("/apps/{app_id}/batch_events", post(http::batch_events))
        .route("/apps/{app_id}/channels", get(http::channels))
        .route("/apps/{app_id}/channels/{channel}", get(http::channel))
        .route("/apps/{app_id}/channels/{channel}/users", get(http::users))
}

/// Wall-clock milliseconds (publication timestamps, API timestamps).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
