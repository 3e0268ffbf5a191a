//! Online-status records (the HTTP online-status API, SPEC §7): per player, when it logged in,
//! its last sign of life, its address, and whether it is online or (for a while after it left)
//! offline with its logout time.
//!
//! Whether a player is *present* is engine presence (one identity in an internal room, kept by
//! HTTP heartbeats or a ping socket); the record holds the facts the API reports and the
//! online/offline status the API answers with. Status changes are atomic per player in the
//! store, so two nodes never both flip the same record.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::model::Identity;

/// One player's record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OnlineRecord {
    pub player: Identity,
    /// Wall-clock milliseconds of the login that started the current (or last) online period.
    pub login_ms: u64,
    /// Wall-clock milliseconds of the last heartbeat (HTTP heartbeat, or a ping on the socket,
    /// recorded in batches).
    pub last_heartbeat_ms: u64,
    pub ip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub online: bool,
    /// Set when the record went offline (logout, ping timeout or TTL expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logout_ms: Option<u64>,
}

/// What a login asks for.
#[derive(Clone, Debug)]
pub struct Login<'a> {
    pub player: &'a Identity,
    pub ip: &'a str,
    pub name: Option<&'a str>,
    pub now_ms: u64,
    /// Keep an online record as it is (a ping socket joining a player that is already online);
    /// otherwise every login starts a new online period (HTTP login, as in the original).
    pub keep_online: bool,
    /// Players online at most (every node together); a login of a player that is not online
    /// is refused when that many are. 0 = no limit.
    pub max_online: u64,
}

#[async_trait]
pub trait OnlineRecords: Send + Sync + 'static {
    /// Marks the player online, atomically. Returns the record and whether it was already
    /// online before this call. An offline record is replaced (new login time, no logout time).
    /// `None` (and no change) when the player is not online and `max_online` players are: the
    /// check and the login are one atomic step, so the cap is exact under concurrency.
    async fn login(&self, login: Login<'_>) -> Result<Option<(OnlineRecord, bool)>, StoreError>;

    /// Stamps `last_heartbeat_ms` of an online record. `None` (and no change) when the player
    /// is unknown or offline.
    async fn heartbeat(
        &self,
        player: &Identity,
        now_ms: u64,
    ) -> Result<Option<OnlineRecord>, StoreError>;

    /// Stamps `last_heartbeat_ms` of those of `players` that are online: one call per tick for
    /// every player that pinged its socket since the last one, never one per ping.
    async fn touch(&self, players: &[Identity], now_ms: u64) -> Result<(), StoreError>;

    /// Online -> offline with `logout_ms = now_ms`, atomically; the record is then kept for
    /// `retain_ms` and removed. `None` (and no change) when the player was not online.
    async fn logout(
        &self,
        player: &Identity,
        now_ms: u64,
        retain_ms: u64,
    ) -> Result<Option<OnlineRecord>, StoreError>;

    /// Like [`logout`](Self::logout), but only when the last heartbeat is at or before
    /// `heartbeat_before_ms`: a presence expiry must not log out a player whose heartbeat
    /// raced it.
    async fn expire(
        &self,
        player: &Identity,
        heartbeat_before_ms: u64,
        now_ms: u64,
        retain_ms: u64,
    ) -> Result<Option<OnlineRecord>, StoreError>;

    /// The record, online or (within its retention) offline.
    async fn get(&self, player: &Identity, now_ms: u64)
        -> Result<Option<OnlineRecord>, StoreError>;

    /// Online records in ascending player-id order, those after `after` only, at most
    /// `limit`: a stable order for cursor pagination.
    async fn list_online(
        &self,
        after: Option<&Identity>,
        limit: usize,
    ) -> Result<Vec<OnlineRecord>, StoreError>;

    /// Keeps at most `max` offline records (0 = no limit): a record going offline beyond it
    /// removes the oldest offline ones, so that logins of ever new players (from many
    /// addresses) cannot grow the store without bound during the retention. Set once at
    /// start-up.
    fn set_offline_cap(&self, _max: u64) {}

    /// Removes offline records past their retention. Stores with native key expiry need
    /// nothing.
    async fn purge(&self, _now_ms: u64) -> Result<(), StoreError> {
        Ok(())
    }
}
