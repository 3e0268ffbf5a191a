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
//! - [`apps`]: the apps (environment and `[[pusher.apps]]`) and their limits.
//! - [`auth`]: channel signatures and HTTP request signing (HMAC-SHA256, MD5 body digests).
//! - [`codec`]: client frames, server frames, the channel name rule and [`PusherRenderer`].
//! - `handler`: the WebSocket upgrade and one function per client event (subscriptions,
//!   client events, `pusher:signin` and `#server-to-user-{id}`).
//! - `presence`: presence members from `channel_data`, and the members object.
//! - `attributes`: `user_count` / `subscription_count` of the API's `info`.
//! - `cache`: cache channels' last event, in the engine's metadata store.
//! - `counts`: subscription count events, coalesced per channel.
//! - `http`: the REST API (`events`, `batch_events`, `channels`, `users`).
//! - `terminate`: `terminate_connections`, through each signed-in user's control room.

pub mod app_config;
pub mod apps;
mod attributes;
pub mod auth;
mod cache;
pub mod codec;
mod counts;
mod handler;
mod http;
mod presence;
mod rooms;
mod terminate;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use std::time::Duration;

use activenow_engine::{ConnId, Engine, Renderer, Room};
use axum::routing::{get, post};
use axum::Router;

use crate::config::Settings;
use crate::host::Host;
use crate::services::webhooks::Webhooks;

pub use app_config::{valid_app_id, AppConfig};
pub use apps::App;
pub use codec::PusherRenderer;
pub use rooms::{is_control_room, is_reserved_room, ROOM_PREFIX};

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
    /// Empty: no app configured; both endpoints refuse.
    /// Shared with the sockets: a socket holds its app by `Arc`, not by a copy of its strings.
    pub apps: Vec<Arc<App>>,
    pub renderer: Arc<dyn Renderer>,
    /// Socket ids are `{node}.{sequence}`, digits only, as the Pusher SDKs validate them
    /// (`^\d+\.\d+$`); `node` is random per process so ids stay unique across nodes.
    node: u32,
    seq: AtomicU64,
}

impl Pusher {
    pub fn new(settings: &Settings, engine: &Engine) -> Pusher {
        let apps: Vec<Arc<App>> = apps::load(settings).into_iter().map(Arc::new).collect();
        let counting = apps
            .iter()
            .filter(|a| a.subscription_count_events)
            .map(|a| a.room_prefix())
            .collect();
        let interval = Duration::from_millis(settings.pusher_subscription_count_interval_ms);
        Pusher {
            apps,
            renderer: Arc::new(PusherRenderer {
                counts: counts::SubscriptionCounts::new(counting, interval, engine),
            }),
            node: rand::random::<u32>() % 1_000_000_000,
            seq: AtomicU64::new(1),
        }
    }

    /// The app whose key is `key` (a scan: a server serves a handful of apps).
    pub fn app_by_key(&self, key: &str) -> Option<&Arc<App>> {
        self.apps.iter().find(|a| a.key == key)
    }

    /// The app whose id is `id`.
    pub fn app_by_id(&self, id: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.id == id).map(|a| &**a)
    }

    /// A new socket id, which is also the engine connection id.
    pub fn next_socket_id(&self) -> ConnId {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        ConnId::new(&format!("{}.{n}", self.node))
    }
}

/// What the Pusher handlers take: the host and the apps.
#[derive(Clone)]
pub struct PusherState {
    pub host: Host,
    pub pusher: Arc<Pusher>,
    /// Each app's webhook sender, by app id (apps with a `webhook_url` only).
    pub webhooks: Arc<[(String, Webhooks)]>,
}

impl std::ops::Deref for PusherState {
    type Target = Host;
    fn deref(&self) -> &Host {
        &self.host
    }
}

/// The routes, for any app state this protocol's state can be taken from.
pub fn routes<S>() -> Router<S>
where
    PusherState: axum::extract::FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/app/{key}", get(handler::upgrade))
        .route("/apps/{app_id}/events", post(http::events::events))
        .route(
            "/apps/{app_id}/batch_events",
            post(http::events::batch_events),
        )
        .route("/apps/{app_id}/channels", get(http::channels::channels))
        .route(
            "/apps/{app_id}/channels/{channel}",
            get(http::channels::channel),
        )
        .route(
            "/apps/{app_id}/channels/{channel}/users",
            get(http::channels::users),
        )
        .route(
            "/apps/{app_id}/users/{user_id}/terminate_connections",
            post(terminate::terminate_connections),
        )
}

/// Wall-clock milliseconds (publication timestamps, API timestamps).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
