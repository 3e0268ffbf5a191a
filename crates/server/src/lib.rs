//! # ActiveNow server
//!
//! The `activenow` binary's library: settings, the HTTP/WebSocket application and its
//! protocol adapters. Presence itself lives in `activenow-engine`; this crate only speaks
//! wire formats and HTTP.
//!
//! # Layout
//! - [`config`]: every setting and limit (flags > env > TOML file > defaults).
//! - [`app`]: the wiring: every protocol's state, the router, a server that tests start on
//!   port 0. The only module that knows every protocol.
//! - [`host`]: what protocols, services and the transport share (engine, settings,
//!   counters, shutdown, socket tracker, limits).
//! - [`metrics`]: the protocol layer's counters and the `/metrics` lines parts write.
//! - [`transport`]: WebSocket plumbing every protocol shares (upgrade checks, buffers, the
//!   socket loop, rate limit).
//! - [`protocol`]: one adapter per protocol (ActiveNow rooms and visitors, ...).
//! - [`services`]: services with background loops (online status, session push), each with
//!   its HTTP/WebSocket adapters beside it.
//! - [`observe`]: health, readiness, Prometheus metrics, CORS.
//! - [`pages`]: `/demo`, `/dashboard`, the SDK bundle, and the dashboard's stats.
//! - [`close`]: every close code and error code.
//! - [`error`]: HTTP error bodies.
//! - [`ids`]: ids the server mints (session ids).
//! - [`api_key`]: the bearer-key check of server-side endpoints.
//! - [`client_auth`]: CLIENT_AUTH: identity proof of clients, token expiry of open sockets.

pub mod api_key;
pub mod app;
pub mod client_auth;
pub mod close;
pub mod config;
pub mod error;
pub mod host;
pub mod ids;
pub mod metrics;
pub mod observe;
pub mod pages;
pub mod protocol;
pub mod services;
pub mod transport;

pub use app::{router, AppState, Server};
pub use config::{Settings, SettingsLayer};
