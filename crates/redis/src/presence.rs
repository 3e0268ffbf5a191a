//! [`RedisPresence`]: membership, counts, liveness and reaping in Redis.
//!
//! Every transition is one Lua script on one room's keys (one slot), so it is atomic across
//! all nodes: two nodes never both see an identity's first join or last leave, and a
//! membership removed by two reapers at once yields its transition to exactly one of them.
//! Updates of many rooms may share one script call (`update_batch.rs`); the call is atomic
//! as a whole, so each room's update still is.
//!
//! Keys that span rooms cannot join a room's script in Redis Cluster, so they are kept
//! *conservatively* instead of atomically:
//! - the room index (`{g}:rooms`) is a superset of the non-empty rooms: a join indexes the
//!   room before its script (so dead-node reaping finds it) and again after it when the room
//!   was empty (so an index cleanup racing with it cannot drop it); a leave that empties a
//!   room removes it from the index, then checks the room and puts it back if it refilled.
//! - liveness: each node refreshes the `seen` time (server clock) of its connections, room
//!   by room, and its own entry in the node registry, in one pipeline per reaper tick. A
//!   connection is refreshed on one tick in `touch_turns` (`state.rs`)
//!   (about every quarter of the lookback), so that one tick's pipeline, which Redis runs
//!   without serving other clients, stays short however many sockets the node holds. A node
//!   whose entry is older than the lookback is dead: every node then sweeps the indexed rooms
//!   for connections not seen for the lookback, and forgets the node once a sweep is complete.
//! - a leave that fails (Redis unreachable) is kept and retried by the reaper, and its
//!   transitions are published then; a join of the same membership cancels it.
//! - a node that finds its registry entry gone or stale (Redis restarted, or it looked dead
//!   long enough to be reaped), or whose client reconnected, reports lost state: the engine
//!   then re-asserts its live memberships with
//!   [`PresenceStore::restore`](activenow_engine::store::PresenceStore::restore).
//! - after an outage, a node holds back its leaves (and dead-node sweeps) until the nodes
//!   that were alive before it have re-asserted and listen again; when Redis lost its data,
//!   re-assertion is silent and the leaves of connections that closed meanwhile are announced
//!   against the re-asserted rooms (see `reconcile.rs`).

mod identities;
mod liveness;
mod outage;
mod reconcile;
mod restore;
mod state;
mod store;
mod update_batch;

pub(crate) use state::Listening;
pub use state::RedisPresence;
