//! The channels protocol (seed 2, SPEC §6): `GET /ws` with a JWT, then subscribe / unsubscribe
//! / publish on named channels.
//!
//! A subscription is presence in the engine: the socket joins the room named by the channel
//! as the token's subject (so counts, `GET /v1/activity/rooms` and the metrics see channels,
//! and the member limit is the engine's atomic join limit), and a publish is an engine
//! publication to that room with the publisher's connection excluded. Everything that crosses
//! nodes therefore goes through the engine's backend; this module keeps no shared state.
//!
//! - [`auth`]: keys and algorithms, claims: verification.
//! - [`token`]: where a token comes from; minting for `activenow token`.
//! - [`codec`]: commands, replies, the `message` renderer, the channel name rule.
//! - `handler`: the upgrade (401 before it) and one function per command.

pub mod auth;
pub mod codec;
mod handler;
pub mod token;

use std::sync::Arc;

use activenow_engine::Renderer;
use axum::routing::get;
use axum::Router;

use crate::config::Settings;
use crate::host::Host;

pub use auth::Verifier;
pub use codec::ChannelRenderer;
pub use token::{mint, parse_ttl};

/// What the channels endpoint shares across its sockets.
pub struct Channels {
    /// One renderer for every channel socket, so the hub encodes each publication once.
    pub renderer: Arc<dyn Renderer>,
    /// Shared with the host, which verifies CLIENT_AUTH tokens with the same keys.
    pub verifier: Arc<Verifier>,
}

impl Channels {
    /// A key that cannot be loaded leaves the endpoint refusing everyone (and is logged);
    /// `activenow serve` checks the key first and does not start with a broken one.
    pub fn new(settings: &Settings) -> Channels {
        let verifier = Verifier::from_settings(settings).unwrap_or_else(|e| {
            tracing::error!(error = %e, "channels refuse every token");
            Verifier::refusing(settings)
        });
        if !settings.jwt_secret.is_empty() && settings.jwt_secret.len() < 32 {
            tracing::warn!("JWT_SECRET is shorter than 32 bytes; HS256 wants at least 256 bits");
        }
        if !verifier.is_configured() {
            tracing::info!("channels (/ws) disabled: set JWT_SECRET or JWT_PUBLIC_KEY_FILE");
        }
        Channels {
            renderer: Arc::new(ChannelRenderer),
            verifier: Arc::new(verifier),
        }
    }
}

/// What the channels endpoint's handler takes: the host and the protocol's parts.
#[derive(Clone)]
pub struct ChannelsState {
    pub host: Host,
    pub channels: Arc<Channels>,
}

impl std::ops::Deref for ChannelsState {
    type Target = Host;
    fn deref(&self) -> &Host {
        &self.host
    }
}

/// The routes, for any app state this protocol's state can be taken from.
pub fn routes<S>() -> Router<S>
where
    ChannelsState: axum::extract::FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new().route("/ws", get(handler::upgrade))
}
