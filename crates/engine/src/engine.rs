//! The [`Engine`] handle and the per-connection [`Connection`] handle.
//!
//! A protocol adapter calls [`Engine::connect`] when a socket opens, then joins rooms with an
//! identity, heartbeats, updates state and finally disconnects. The engine
//! - asks the store for each transition (the store decides atomically whether a join is the
//!   identity's first or a leave its last),
//! - publishes every transition through the broker, which brings it to every node's hub,
//! - lets a dropped connection's memberships linger for the leave grace (`grace.rs`),
//! - keeps TTL locally on tokio's monotonic clock: a heartbeat is an atomic store, no backend
//!   call; the reaper expires silent connections and refreshes the live ones in the store in
//!   one batch per tick.
//!
//! This file only names the parts; each concern is one file under `engine/`, and they import
//! one way: the operations import `handle.rs` (the shared state) and `registry.rs`, never
//! this file, and the handle imports none of the operations.

mod config;
mod connection;
mod grace;
mod grace_state;
mod handle;
mod kick;
mod kick_notice;
mod liveness;
mod metadata;
mod observer;
mod queries;
mod reaper;
mod reassert;
mod registry;
mod snapshot;
mod subscriptions;
mod transitions;

pub use config::{EngineConfig, GraceOn};
pub use connection::Connection;
pub use handle::Engine;
pub use kick_notice::{kicked_conns, KICK_PUBLICATION};
pub use liveness::Liveness;
pub use observer::{Cause, TransitionObserver};
