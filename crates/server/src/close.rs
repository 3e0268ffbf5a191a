//! Every WebSocket close code and client-visible error code, in one place.

/// Normal closure: the server finished with this socket (session confirmed, ...).
pub const NORMAL: u16 = 1000;
/// Policy violation: slow consumer, message flood, room full.
pub const POLICY: u16 = 1008;
/// A message larger than `MAX_FRAME_BYTES`.
pub const TOO_BIG: u16 = 1009;
/// The server failed (backend unreachable while joining).
pub const INTERNAL: u16 = 1011;
/// Service restart: the node is shutting down; reconnect (elsewhere).
pub const RESTART: u16 = 1012;

/// Error codes of `{"type":"error","code":...}` frames and HTTP `{"error":...}` bodies.
pub mod code {
    /// The message is not JSON (or not a JSON object).
    pub const BAD_JSON: &str = "bad_json";
    /// `type` is missing or not one this endpoint knows.
    pub const UNKNOWN_TYPE: &str = "unknown_type";
    /// A known message with missing or invalid fields.
    pub const BAD_MESSAGE: &str = "bad_message";
    /// Binary frames are not part of the protocol.
    pub const BINARY_NOT_SUPPORTED: &str = "binary_not_supported";
    /// More than `MAX_MESSAGES_PER_SECOND`; the message was dropped.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// The room holds `MAX_ROOM_USERS` identities.
    pub const ROOM_FULL: &str = "room_full";
    /// The backend failed; try again.
    pub const INTERNAL: &str = "internal";
    /// `Authorization: Bearer API_KEY` missing or wrong.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// `API_KEY` is not set, so server-side writes are disabled.
    pub const API_KEY_NOT_SET: &str = "api_key_not_set";
    /// A metadata write's expected revision is stale.
    pub const METADATA_CONFLICT: &str = "METADATA_CONFLICT";
    /// A metadata write names a lock its actor does not hold.
    pub const METADATA_LOCK: &str = "METADATA_LOCK";
    /// A metadata request breaks a rule or a limit.
    pub const METADATA_INVALID: &str = "METADATA_INVALID";
    /// The lock is held by someone else.
    pub const LOCK_HELD: &str = "LOCK_HELD";
    /// Releasing a lock that someone else holds.
    pub const LOCK_NOT_OWNER: &str = "LOCK_NOT_OWNER";
    /// Releasing a lock nobody holds (HTTP 404).
    pub const LOCK_NOT_HELD: &str = "LOCK_NOT_HELD";
    /// A malformed lock request (name, owner, ttl).
    pub const LOCK_INVALID: &str = "LOCK_INVALID";
    /// A Socket.IO presence request with missing or invalid fields.
    pub const PRESENCE_INVALID: &str = "PRESENCE_INVALID";
}
