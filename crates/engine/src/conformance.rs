//! The backend conformance suite: every backend must pass these, through the engine.
//!
//! Each check is an `async fn(Backend)`; [`conformance_suite!`](crate::conformance_suite)
//! turns them into `#[tokio::test]`s for a backend factory. The memory backend runs them in
//! this crate's tests; the Redis backend runs the same ones against a real `redis-server`.
//! TTL is tested with real (short) time here so that a remote store works too; the memory
//! backend's TTL is also tested on tokio's paused clock in `engine_tests`.
//!
//! One file per concern under `conformance/`; they share `support.rs` and never import this
//! file.

mod broker;
mod metadata;
mod observers;
mod presence;
mod queries;
mod records;
mod sessions;
mod stats;
mod support;

pub use broker::*;
pub use metadata::*;
pub use observers::*;
pub use presence::*;
pub use queries::*;
pub use records::*;
pub use sessions::*;
pub use stats::*;
pub use support::*;

/// Generates one `#[tokio::test]` per conformance check for a backend factory expression
/// (an `async` block or future yielding a [`Backend`]).
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@tests $make;
            identity_joins_on_first_connection_and_leaves_on_last,
            events_reach_subscribers_with_counts,
            http_style_update_needs_presence,
            room_limit_counts_identities,
            rekey_moves_the_identity,
            silent_connection_expires_and_heartbeat_rejoins,
            concurrent_joins_and_leaves_end_exact,
            concurrent_updates_each_get_their_own_transition,
            metadata_writes_follow_revisions,
            metadata_concurrent_updates_have_one_winner_per_revision,
            metadata_lock_guards_writes,
            locks_are_exclusive_reentrant_and_expire,
            online_records_follow_their_contract,
            sessions_follow_their_contract,
            observers_see_this_nodes_transitions,
            observers_hear_the_cause_of_each_transition,
            visitor_stats_follow_their_contract,
            visits_through_the_engine_are_counted,
            stats_history_is_shared_by_shared_backends,
            broker_keeps_each_rooms_order,
            room_info_and_identity_rooms_follow_memberships,
            member_pages_list_every_stayer_once,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(backend) = $make.await else { return };
                $crate::conformance::$name(backend).await;
            }
        )*
    };
}
