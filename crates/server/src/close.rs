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
}
