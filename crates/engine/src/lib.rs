//! # ActiveNow presence engine
//!
//! Owns who is where: rooms, identities (one identity across many connections counts once),
//! connections, heartbeats and TTL, join/update/leave transitions, counts, and the local
//! fan-out of room events to this node's sockets.
//!
//! It must not know any wire format (no JSON shapes of a protocol, no WebSocket or HTTP types)
//! nor any storage detail: protocols plug in a [`Renderer`] that turns events into bytes, and
//! storage plugs in behind the [`PresenceStore`], [`Broker`], [`VisitorStats`], [`MetadataStore`]
//! and [`LockStore`] traits.
//!
//! # Layout
//! - [`model`]: rooms, identities, connection ids, members and events (plain data).
//! - [`store`]: the backend contracts, one trait per concern.
//! - [`memory`]: the in-memory backend (the default, single node) and [`Backend::memory`].
//! - [`records`]: the online-status record store contract (HTTP online-status API).
//! - [`sessions`]: the push-session store contract (a page waiting for one outcome).
//! - [`engine`]: the [`Engine`] handle and per-connection [`Connection`] handle, one concern
//!   per file under `engine/` (config, liveness, observers, registry, reaper, subscriptions,
//!   transitions, queries, metadata operations).
//! - [`hub`]: local subscribers per room; renders each event once per protocol.
//! - [`outbox`]: the bounded per-connection send queue and its slow-consumer policy.
//! - [`metadata`]: channel metadata: the data and the rules of a write (pure).
//! - `shard`: the sharding of the concurrent maps, shared by the core and the memory backend.
//! - [`clock`]: wall-clock milliseconds and dates (monotonic time is tokio's `Instant`).
//! - [`metrics`]: counters the server exports.
//!
//! Files import one way (the `layering` test checks it): `lib.rs` re-exports, nothing imports
//! through it; the backend contracts ([`store`]) know no backend and no engine; the memory
//! backend and the engine import the contracts; nothing imports the engine but tests.

pub mod clock;
pub mod engine;
pub mod error;
pub mod hub;
pub mod memory;
pub mod metadata;
pub mod metrics;
pub mod model;
pub mod outbox;
pub mod records;
pub mod sessions;
mod shard;
pub mod store;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod grace_tests;

pub use engine::{
    kicked_conns, Cause, Connection, Engine, EngineConfig, GraceOn, Liveness, TransitionObserver,
    KICK_PUBLICATION,
};
pub use error::{EngineError, StoreError};
pub use hub::Renderer;
pub use metadata::{
    ChannelKey, ChannelMetadata, MetadataChange, MetadataEntry, MetadataError, MetadataItem,
    MetadataLimits, MetadataOp, MetadataWrite,
};
pub use model::{
    ConnId, EventKind, Identity, IdentityError, Member, PresenceEvent, Publication, Room,
    RoomEvent, RoomMessage, RoomNameError, State,
};
pub use outbox::{Outbox, OutboxLimits, Outgoing};
pub use records::{OnlineRecord, OnlineRecords};
pub use sessions::{PushOutcome, SessionPush, SessionState, SessionStore};
pub use store::{
    Backend, Broker, LockAcquire, LockHolder, LockRelease, LockStore, MetadataStore, PresenceStore,
    RoomInfo, StatsSample, Transition, VisitorStats,
};
