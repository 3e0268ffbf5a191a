//! What an outage leaves to reconcile, as plain data: memberships that ended on this node
//! ([`Departed`]), and what this node knows of Redis and the other nodes ([`Reconcile`]).
//! The steps over them are in `reconcile.rs`.

use std::collections::HashSet;
use std::time::Instant;

use activenow_engine::{ConnId, Identity, Room};

/// A membership that ended on this node, with what announcing it without Redis needs.
pub(super) struct Departed {
    pub room: Room,
    pub conn: ConnId,
    /// Identity and epoch, when this node knew the membership.
    pub who: Option<(Identity, u64)>,
}

impl Departed {
    pub(super) fn new(room: Room, conn: ConnId) -> Departed {
        Departed {
            room,
            conn,
            who: None,
        }
    }
}

/// The entries of `departed` whose membership is in `failed` (taken out of `departed`).
pub(super) fn matching(departed: &mut Vec<Departed>, failed: &[(Room, ConnId)]) -> Vec<Departed> {
    if failed.is_empty() {
        return Vec::new();
    }
    let failed: HashSet<(&Room, &ConnId)> = failed.iter().map(|(r, c)| (r, c)).collect();
    let (hit, rest): (Vec<Departed>, Vec<Departed>) = std::mem::take(departed)
        .into_iter()
        .partition(|d| failed.contains(&(&d.room, &d.conn)));
    *departed = rest;
    hit
}

/// What this node knows of Redis and the other nodes, and the outage it reconciles.
#[derive(Default)]
pub(super) struct Reconcile {
    /// The data epoch seen (`None` before the first tick, or to adopt the next one).
    pub(super) epoch: Option<String>,
    /// Server time of the last tick that reached Redis.
    pub(super) last_tick_ms: u64,
    /// The other nodes alive at that tick.
    pub(super) peers: Vec<String>,
    pub(super) outage: Option<Outage>,
}

pub(super) struct Outage {
    /// Ready marks at least this recent were made after the outage began.
    pub(super) since_ms: u64,
    /// The nodes to wait for.
    pub(super) peers: Vec<String>,
    /// Redis lost its data: restores are silent and the held-back leaves become orphans.
    pub(super) data_lost: bool,
    /// When Redis answered again (this node's clock).
    pub(super) back_at: Option<Instant>,
}

/// What one registry tick tells (see `lua/nodes.lua`).
pub(super) struct TickView {
    pub now_ms: u64,
    pub epoch: String,
    pub live: Vec<String>,
    pub ready: Vec<String>,
}
