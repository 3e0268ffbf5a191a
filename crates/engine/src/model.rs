//! Plain data the engine and its backends exchange. Serializable so that a remote backend can
//! carry it between nodes; none of it is a client wire format.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Free-form presence state of one connection (display name, position, cursor, ...).
pub type State = serde_json::Map<String, serde_json::Value>;

/// Longest room name, in bytes.
pub const MAX_ROOM_BYTES: usize = 256;

/// A validated room name: 1-256 bytes of UTF-8 without control characters.
///
/// Names that start with a control character are reserved for the engine's own rooms
/// (the global visitors room, session rooms); clients can never name them.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Room(Arc<str>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RoomNameError {
    #[error("room name is empty")]
    Empty,
    #[error("room name is longer than {MAX_ROOM_BYTES} bytes")]
    TooLong,
    #[error("room name contains a control character")]
    ControlCharacter,
}

impl Room {
    /// Validates a client-supplied room name.
    pub fn parse(name: &str) -> Result<Room, RoomNameError> {
        if name.is_empty() {
            return Err(RoomNameError::Empty);
        }
        if name.len() > MAX_ROOM_BYTES {
            return Err(RoomNameError::TooLong);
        }
        if name.chars().any(char::is_control) {
            return Err(RoomNameError::ControlCharacter);
        }
        Ok(Room(name.into()))
    }

    /// An engine-reserved room: the leading control character keeps it out of the client
    /// namespace.
    pub fn internal(name: &str) -> Room {
        Room(format!("\u{1}{name}").into())
    }

    /// The global visitors room behind `/v1/ws/web`.
    pub fn visitors() -> Room {
        Room::internal("visitors")
    }

    pub fn is_internal(&self) -> bool {
        self.0.starts_with('\u{1}')
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who is present: a session id, user id, player id or JWT subject. Several connections of
/// one identity count once in a room.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Identity(Arc<str>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("identity is empty")]
    Empty,
    #[error("identity is longer than {max_bytes} bytes")]
    TooLong { max_bytes: usize },
    #[error("identity contains a control character")]
    ControlCharacter,
}

impl Identity {
    /// Validates an identity named from outside (a client, a token, an HTTP body): 1 to
    /// `max_bytes` bytes without control characters, the one rule for every protocol. Each
    /// protocol keeps its own limit and its own message.
    pub fn parse(id: &str, max_bytes: usize) -> Result<Identity, IdentityError> {
        if id.is_empty() {
            return Err(IdentityError::Empty);
        }
        if id.len() > max_bytes {
            return Err(IdentityError::TooLong { max_bytes });
        }
        if id.chars().any(char::is_control) {
            return Err(IdentityError::ControlCharacter);
        }
        Ok(Identity(id.into()))
    }

    /// An identity the caller already trusts (minted here, or checked by
    /// [`Identity::parse`]).
    pub fn new(id: &str) -> Identity {
        Identity(id.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A connection id, unique across the cluster (minted as `<node>.<sequence>`, or given by a
/// protocol that has its own ids, like Socket.IO's socket id).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnId(Arc<str>);

impl ConnId {
    pub fn new(id: &str) -> ConnId {
        ConnId(id.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One connection's membership of one room, as the store keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub conn: ConnId,
    pub identity: Identity,
    #[serde(default)]
    pub state: State,
    /// Wall-clock milliseconds.
    pub joined_at_ms: u64,
    /// Wall-clock milliseconds of the last state change or refresh through an update.
    pub updated_at_ms: u64,
    /// Grows on every (re)join of a connection; Socket.IO clients compare it to drop stale
    /// heartbeats.
    pub epoch: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Join,
    Update,
    Leave,
}

/// A presence transition of one connection in one room.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PresenceEvent {
    pub kind: EventKind,
    pub member: Member,
    /// The identity itself changed: its first connection joined, its last one left, or (for
    /// updates) this is the one event an identity-level update is reported by. Protocols
    /// that count identities render only these.
    pub identity_changed: bool,
    /// Identities present in the room after this transition.
    pub count: u64,
    /// The room's transition counter after this transition: a later version always carries a
    /// later count, whatever order the events arrive in.
    pub version: u64,
    /// Wall-clock milliseconds of the transition.
    pub ts_ms: u64,
}

/// A message published to a room's subscribers by one of them (channels protocol) or by the
/// server (session push).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Publication {
    /// Protocol-level event name (the channels protocol's `event`, a session status, ...).
    pub event: String,
    pub data: serde_json::Value,
    /// Identity of the publisher, set by the server, never by the client.
    pub from: Option<Identity>,
    pub ts_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RoomEvent {
    Presence(PresenceEvent),
    Publication(Publication),
}

/// What travels between nodes: an event for every local subscriber of `room`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoomMessage {
    pub room: Room,
    pub event: RoomEvent,
    /// A connection that must not receive it (the publisher of a publication).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<ConnId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names() {
        assert!(Room::parse("demo").is_ok());
        assert!(Room::parse("/blog/2024/hello-world?x=1").is_ok());
        assert!(Room::parse("周报 第一章").is_ok());
        assert_eq!(Room::parse(""), Err(RoomNameError::Empty));
        assert_eq!(Room::parse(&"a".repeat(257)), Err(RoomNameError::TooLong));
        assert!(Room::parse(&"a".repeat(256)).is_ok());
        assert_eq!(Room::parse("a\nb"), Err(RoomNameError::ControlCharacter));
        assert_eq!(
            Room::parse("\u{1}visitors"),
            Err(RoomNameError::ControlCharacter)
        );
        assert!(Room::visitors().is_internal());
        assert!(!Room::parse("visitors").unwrap().is_internal());
    }

    #[test]
    fn identities() {
        assert_eq!(Identity::parse("u1", 4), Ok(Identity::new("u1")));
        assert_eq!(Identity::parse("周", 3), Ok(Identity::new("周")));
        assert_eq!(Identity::parse("", 4), Err(IdentityError::Empty));
        assert_eq!(
            Identity::parse("周", 2),
            Err(IdentityError::TooLong { max_bytes: 2 })
        );
        assert_eq!(
            Identity::parse("a\tb", 4),
            Err(IdentityError::ControlCharacter)
        );
    }
}
