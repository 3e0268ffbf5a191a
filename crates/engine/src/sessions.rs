//! Push sessions (SPEC §8): a short-lived id a web page waits on for one outcome (QR login,
//! payment, pairing). The store keeps each session's status, its expiry and the pushes made
//! to it, so a socket that connects after a push still gets it. Pushes travel to sockets as
//! engine publications in the session's internal room; the store only decides, atomically,
//! whether a push is allowed and numbers it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::model::Room;

/// Status of a session that was created and not pushed to yet.
pub const PENDING: &str = "pending";
/// Status the expiry sets.
pub const EXPIRED: &str = "expired";

/// One push, numbered by the store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionPush {
    /// 1, 2, ... per session: sockets use it to skip a push they already got.
    pub seq: u64,
    /// The message for the waiting sockets (a JSON object; its shape is the protocol's).
    pub message: serde_json::Value,
    /// The sockets close after this push; the session is finished.
    pub close: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionState {
    pub id: String,
    /// Free-form kind (`qr_login`, `payment`, ...).
    pub kind: String,
    pub status: String,
    /// Wall-clock milliseconds.
    pub created_ms: u64,
    pub expires_ms: u64,
    /// What the creator attached (`client_info`).
    #[serde(default)]
    pub info: serde_json::Value,
    /// A push with `close` was made (confirmed, rejected, expired, ...): no further push.
    pub finished: bool,
    /// The latest pushes, oldest first (at most the store's `max_pushes`).
    #[serde(default)]
    pub pushes: Vec<SessionPush>,
    /// The last push number handed out.
    pub seq: u64,
}

impl SessionState {
    /// The room its sockets wait in.
    pub fn room(&self) -> Room {
        session_room(&self.id)
    }
}

pub fn session_room(id: &str) -> Room {
    Room::internal(&format!("session:{id}"))
}

/// What [`SessionStore::push`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum PushOutcome {
    Pushed(SessionPush),
    NotFound,
    /// Past its expiry (whether or not the expiry pass has marked it yet).
    Expired,
    /// An earlier push closed it.
    Finished,
}

#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session, kept until `expires_ms + retain_ms`. False (nothing stored) when
    /// `max_active` sessions exist already.
    async fn create(
        &self,
        state: SessionState,
        max_active: u64,
        retain_ms: u64,
    ) -> Result<bool, StoreError>;

    async fn get(&self, id: &str) -> Result<Option<SessionState>, StoreError>;

    /// Atomically: refuses a push to an unknown, expired (`now_ms >= expires_ms`) or finished
    /// session; otherwise numbers it, sets the status, appends it (dropping the oldest beyond
    /// `max_pushes`) and, with `close`, finishes the session.
    async fn push(
        &self,
        id: &str,
        status: &str,
        message: serde_json::Value,
        close: bool,
        now_ms: u64,
        max_pushes: usize,
    ) -> Result<PushOutcome, StoreError>;

    /// Every unfinished session past its expiry becomes `expired` with `message` pushed (and
    /// closing); each is returned exactly once across all nodes, so its expiry is published
    /// once. Also removes sessions past their retention.
    async fn expire_due(
        &self,
        now_ms: u64,
        message: serde_json::Value,
        max_pushes: usize,
    ) -> Result<Vec<(String, SessionPush)>, StoreError>;

    /// Removes a session; idempotent (false when it was not there).
    async fn remove(&self, id: &str) -> Result<bool, StoreError>;
}
