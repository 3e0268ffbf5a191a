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
/// The back end disconnected this identity (`DELETE /v1/users/{identity}`), reason `kicked`.
pub const KICKED: u16 = 4003;

/// A close frame: a code with the reason sent beside it. Every reason the server sends is a
/// constant in [`reason`], so a handler cannot invent one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close {
    pub code: u16,
    pub reason: &'static str,
}

impl Close {
    pub const fn new(code: u16, reason: &'static str) -> Close {
        Close { code, reason }
    }
}

/// Every close frame of the ActiveNow, online, session and shared socket loop, with its reason.
pub mod reason {
    use super::*;

    /// The node is shutting down.
    pub const SERVER_RESTART: Close = Close::new(RESTART, "server restart");
    /// The socket's queue stayed full past SLOW_CONSUMER_TIMEOUT.
    pub const SLOW_CONSUMER: Close = Close::new(POLICY, "slow consumer");
    /// `DELETE /v1/users/{identity}` (docs/server-api.md).
    pub const KICKED: Close = Close::new(super::KICKED, "kicked");
    /// The server finished with the socket (its subscription ended, a session was confirmed).
    pub const DONE: Close = Close::new(NORMAL, "done");
    /// More pings or pongs than MAX_MESSAGES_PER_SECOND (the library answers pings itself).
    pub const TOO_MANY_PINGS: Close = Close::new(POLICY, "too many pings");
    /// More messages than MAX_MESSAGES_PER_SECOND on a socket that closes on a flood.
    pub const TOO_MANY_MESSAGES: Close = Close::new(POLICY, "too many messages");
    /// CLIENT_AUTH=jwt: the token passed `exp` + JWT_LEEWAY.
    pub const TOKEN_EXPIRED: Close = Close::new(super::TOKEN_EXPIRED, "token_expired");
    /// The client was silent for its idle timeout (code 1001 unless the protocol has its own).
    pub const IDLE_TIMEOUT: &str = "idle timeout";
    /// The room holds MAX_ROOM_USERS identities.
    pub const ROOM_FULL: Close = Close::new(POLICY, "room full");
    /// The backend failed while joining.
    pub const JOIN_FAILED: Close = Close::new(INTERNAL, "join failed");
    /// ONLINE_MAX_PLAYERS ping sockets are open.
    pub const SERVER_FULL: Close = Close::new(TRY_AGAIN_LATER, "server full");
    /// The backend failed while marking the player online.
    pub const LOGIN_FAILED: Close = Close::new(INTERNAL, "login failed");
    /// The ping socket got no ping within ONLINE_PING_TIMEOUT.
    pub const PING_TIMEOUT: Close = Close::new(NORMAL, "ping timeout");
    /// The session store failed.
    pub const SESSION_UNAVAILABLE: Close = Close::new(INTERNAL, "session unavailable");
    /// A frame over MAX_FRAME_BYTES.
    pub const MESSAGE_TOO_BIG: Close = Close::new(TOO_BIG, "message too big");
    /// A text message that is not UTF-8.
    pub const INVALID_UTF8: Close = Close::new(INVALID_PAYLOAD, "invalid UTF-8 in a text message");
    /// RFC 6455 violations, by kind.
    pub const RESERVED_BITS: Close = Close::new(PROTOCOL, "protocol error: reserved bits set");
    pub const UNMASKED: Close = Close::new(PROTOCOL, "protocol error: unmasked client frame");
    pub const UNKNOWN_OPCODE: Close = Close::new(PROTOCOL, "protocol error: unknown opcode");
    pub const BAD_CONTROL_FRAME: Close = Close::new(PROTOCOL, "protocol error: bad control frame");
    pub const BAD_FRAGMENTATION: Close = Close::new(PROTOCOL, "protocol error: bad fragmentation");
    pub const PROTOCOL_ERROR: Close = Close::new(PROTOCOL, "protocol error");
}

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
    /// The request's `Origin` is not in ORIGIN_ALLOWLIST (HTTP 403 before an upgrade).
    pub const ORIGIN_NOT_ALLOWED: &str = "origin_not_allowed";
    /// MAX_CONNECTIONS or MAX_CONNECTIONS_PER_IP is reached (HTTP 503/429).
    pub const TOO_MANY_CONNECTIONS: &str = "too_many_connections";
    /// More WebSocket handshakes from one IP than HANDSHAKE_RATE_PER_IP (HTTP 429).
    pub const TOO_MANY_HANDSHAKES: &str = "too_many_handshakes";
    /// More open stats streams than the dashboard allows (HTTP 429).
    pub const TOO_MANY_STREAMS: &str = "too_many_streams";
    /// A request body over MAX_BODY_BYTES (HTTP 413).
    pub const BODY_TOO_LARGE: &str = "body_too_large";
    /// A request body that is not the expected JSON (HTTP 400).
    pub const BAD_BODY: &str = "bad_body";
    /// A request body that did not arrive within HTTP_BODY_TIMEOUT (HTTP 408).
    pub const BODY_TIMEOUT: &str = "body_timeout";
    /// A room name that breaks the naming rule (HTTP 400).
    pub const BAD_ROOM: &str = "bad_room";
    /// A session id that breaks the identity rule (HTTP 400, and in `hello` errors).
    pub const BAD_SESSION_ID: &str = "bad_session_id";
    /// A request without the `session_id` it needs (HTTP 400).
    pub const MISSING_SESSION_ID: &str = "missing_session_id";
    /// A `limit` query parameter that is not a positive number in range (HTTP 400).
    pub const BAD_LIMIT: &str = "bad_limit";
    /// Leaving or touching a room the session is not in (HTTP 404).
    pub const NOT_PRESENT: &str = "not_present";
    /// The backend failed (HTTP 503).
    pub const BACKEND_UNAVAILABLE: &str = "backend_unavailable";
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
