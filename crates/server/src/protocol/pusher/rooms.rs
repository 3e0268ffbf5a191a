//! The Pusher namespace of engine rooms: every Pusher channel's room is
//! `pusher:{app_id}:{channel}`, and no other protocol may name such a room.

/// Every Pusher channel's room starts with this; other protocols refuse such room names.
pub const ROOM_PREFIX: &str = "pusher:";

/// Whether a client-supplied room name lies in the Pusher namespace, which only the Pusher
/// endpoint (after its signature check) may join.
pub fn is_reserved_room(name: &str) -> bool {
    name.starts_with(ROOM_PREFIX)
}

/// Whether an engine room is one of Pusher's control rooms (`#server-to-user-{id}`), which
/// carry no presence worth reporting (no room webhooks).
pub fn is_control_room(room: &str) -> bool {
    room.strip_prefix(ROOM_PREFIX)
        .and_then(|rest| rest.split_once(':'))
        .is_some_and(|(_, channel)| channel.starts_with('#'))
}
