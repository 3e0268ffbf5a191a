//! Every WebSocket close code and client-visible error code, in one place.

/// Normal closure: the server finished with this socket (session confirmed, ...).
pub const NORMAL: u16 = 1000;
/// Going away: the client was silent (no message, no pong) for its idle timeout.
pub const IDLE: u16 = 1001;
/// Protocol error: a frame that breaks RFC 6455 (reserved bits, unmasked, bad opcode).
pub const PROTOCOL: u16 = 1002;
/// Invalid frame payload data: a text message that is not UTF-8.
pub const INVALID_PAYLOAD: u16 = 1007;
/// Policy violation: slow consumer, message flood, ping flood, room full.
pub const POLICY: u16 = 1008;
/// A message larger than `MAX_FRAME_BYTES`.
pub const TOO_BIG: u16 = 1009;
/// The server failed (backend unreachable while joining).
pub const INTERNAL: u16 = 1011;
/// Service restart: the node is shutting down; reconnect (elsewhere).
pub const RESTART: u16 = 1012;
/// Try again later: a cap of this server is reached (ONLINE_MAX_PLAYERS on the ping socket).
pub const TRY_AGAIN_LATER: u16 = 1013;
/// CLIENT_AUTH=jwt: the socket's token passed `exp` + JWT_LEEWAY without a `refresh`.
pub const TOKEN_EXPIRED: u16 = 4001;

/// Bytes of a client's own input (an unknown type, event name) an error message may repeat.
pub const ECHO_BYTES: usize = 32;
/// Longest library error text (a JSON parse error quotes the input) put in an error message.
pub const DETAIL_BYTES: usize = 96;

/// `text` cut to at most `max` bytes at a character boundary, with `…` when cut: an error
/// frame never sends a client's 60 KB back to it.
pub fn clip(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}…", &text[..end]))
}

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
    /// CLIENT_AUTH=jwt: the request names an identity other than its token's subject (HTTP 403
    /// `identity_mismatch`; Socket.IO acks `IDENTITY_MISMATCH`).
    pub const IDENTITY_MISMATCH: &str = "identity_mismatch";
    pub const IDENTITY_MISMATCH_ACK: &str = "IDENTITY_MISMATCH";
    /// A Socket.IO metadata write this socket may not make (not joined, not a member of the
    /// channel's room, or METADATA_WRITE=server).
    pub const METADATA_FORBIDDEN: &str = "METADATA_FORBIDDEN";
    /// A percent-encoded path or query that does not decode to UTF-8 (HTTP 400).
    pub const BAD_ENCODING: &str = "bad_encoding";
    /// A relayed Socket.IO event from a socket that has not joined a presence room.
    pub const NOT_JOINED: &str = "not_joined";
    /// A relayed Socket.IO event over `SOCKETIO_RELAY_MAX_BYTES`.
    pub const TOO_LARGE: &str = "too_large";
    /// A cap of unauthenticated objects is reached (ONLINE_MAX_PLAYERS).
    pub const SERVER_FULL: &str = "server_full";
}

/// Error codes of the channels protocol (`/ws`), as seed 2's clients know them:
/// `{"type":"error","error":{"code":...,"message":...}}`. Upper case, unlike the codes above.
pub mod channel_code {
    /// The channel holds its limit of subscribers (CHANNEL_MAX_USERS / MAX_ROOM_USERS).
    pub const ROOM_FULL: &str = "ROOM_FULL";
    /// The channel name breaks the naming rule (2-12 of CJK, letters, digits, space, `_-`).
    pub const INVALID_CHANNEL: &str = "INVALID_CHANNEL";
    /// Publish or unsubscribe on a channel this socket has not subscribed to.
    pub const NOT_SUBSCRIBED: &str = "NOT_SUBSCRIBED";
    /// Not JSON, an unknown `type`, missing or mistyped fields, binary frames.
    pub const BAD_MESSAGE: &str = "BAD_MESSAGE";
    /// More publishes than CHANNEL_PUBLISH_RATE (or messages than MAX_MESSAGES_PER_SECOND);
    /// the message was dropped.
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// A publish whose `data` exceeds CHANNEL_MAX_PAYLOAD_BYTES; it was dropped.
    pub const TOO_LARGE: &str = "TOO_LARGE";
    /// More subscriptions on one socket than CHANNEL_MAX_SUBSCRIPTIONS.
    pub const TOO_MANY_SUBSCRIPTIONS: &str = "TOO_MANY_SUBSCRIPTIONS";
    /// The backend failed; try again.
    pub const INTERNAL: &str = "INTERNAL";
}

/// Reasons of the channels endpoint's `401` before the upgrade: `{"error":...,"message":...}`.
pub mod auth_code {
    /// Neither JWT_SECRET nor JWT_PUBLIC_KEY_FILE is configured: nobody can be verified.
    pub const NOT_CONFIGURED: &str = "auth_not_configured";
    /// No token in `?token=`, `Authorization: Bearer` or `Sec-WebSocket-Protocol`.
    pub const MISSING: &str = "token_missing";
    /// Not a JWT, or its signature does not verify.
    pub const INVALID: &str = "token_invalid";
    /// `exp` is past (beyond JWT_LEEWAY), or `nbf` is still ahead.
    pub const EXPIRED: &str = "token_expired";
    /// Signed with an algorithm this server does not accept for its keys (`none`, HS512, ...).
    pub const ALGORITHM: &str = "token_algorithm";
    /// Neither `sub` nor `user_id` holds a usable user id.
    pub const NO_SUBJECT: &str = "token_missing_subject";
}

/// Pusher protocol v7 codes (`/app/{key}`), in `pusher:error` frames and as close codes. Their
/// ranges tell pusher-js what to do after a close: 4000-4099 do not reconnect, 4100-4199
/// reconnect with back-off, 4200-4299 reconnect at once; 4300-4399 are errors that leave the
/// socket open.
pub mod pusher_code {
    /// No app has this key (or no app is configured).
    pub const APP_NOT_FOUND: u16 = 4001;
    /// No `protocol` query parameter.
    pub const NO_PROTOCOL: u16 = 4008;
    /// `protocol` is older than 7 (or not a number).
    pub const UNSUPPORTED_PROTOCOL: u16 = 4007;
    /// A client event on a channel it may not use (public, encrypted, not subscribed,
    /// client events disabled); a `pusher:signin` with a bad signature (closes).
    pub const UNAUTHORIZED: u16 = 4009;
    /// The app holds its `max_connections` sockets on this node (`[[pusher.apps]]`).
    pub const OVER_QUOTA: u16 = 4004;
    /// This node holds MAX_CONNECTIONS sockets: reconnect later.
    pub const OVER_CAPACITY: u16 = 4100;
    /// Generic: reconnect (the backend failed).
    pub const RECONNECT: u16 = 4200;
    /// The client was silent (no message, no pong) for activity_timeout + 30 s.
    pub const PONG_NOT_RECEIVED: u16 = 4201;
    /// A malformed or unknown frame, or one over a size limit; the socket stays open.
    pub const GENERIC: u16 = 4300;
    /// More client events than PUSHER_CLIENT_EVENT_RATE per second; the event was dropped.
    pub const CLIENT_EVENT_RATE: u16 = 4301;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_at_a_char_boundary() {
        assert_eq!(clip("short", 32), "short");
        assert_eq!(
            clip(&"a".repeat(60_000), ECHO_BYTES).len(),
            ECHO_BYTES + "…".len()
        );
        assert_eq!(clip("ééé", 3), "é…");
    }
}
