//! Pusher protocol v7 frames: `{"event": E, "channel": C?, "data": D}` both ways. Server
//! frames that the protocol defines with a JSON *string* in `data` (connection_established,
//! subscription_succeeded, member_added/removed) are encoded that way; pusher-js decodes
//! either form. [`PusherRenderer`] encodes each engine event once per room.

use std::sync::Arc;

use activenow_engine::{
    EventKind, Identity, PresenceEvent, Publication, Renderer, Room, RoomEvent,
};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};

pub use super::app_config::valid_key;
use super::counts::{SubscriptionCounts, SUBSCRIPTION_COUNT};
use super::rooms::ROOM_PREFIX;
use crate::close::pusher_code as code;

/// Longest channel name (Pusher: 164 characters).
pub const MAX_CHANNEL_BYTES: usize = 164;
/// Longest presence `user_id` (Pusher: 128 characters).
pub const MAX_USER_ID_BYTES: usize = 128;
/// Longest client event name (Pusher: 200 characters).
pub const MAX_EVENT_NAME_BYTES: usize = 200;

/// The publication event that carries a presence channel's member_added: a publication, not
/// the engine's join event, so that it can skip the joining socket (`exclude`). The leading
/// control character keeps it out of every client's event namespace.
pub const MEMBER_ADDED: &str = "\u{1}pusher:member_added";

/// Pusher's channel name rule: 1-164 of `A-Z a-z 0-9 _ - = @ , . ;`.
pub fn valid_channel(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CHANNEL_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-=@,.;".contains(&b))
}

/// The channel of a signed-in user's server-to-user events.
pub const SERVER_TO_USER: &str = "#server-to-user-";

/// The user id of a `#server-to-user-{id}` channel, if `name` is one with a usable id.
pub fn server_to_user(name: &str) -> Option<&str> {
    let id = name.strip_prefix(SERVER_TO_USER)?;
    Identity::parse(id, MAX_USER_ID_BYTES).ok().map(|_| id)
}

/// `pusher:signin_success` with the signed `user_data` string.
pub fn signin_success(user_data: &str) -> Bytes {
    let data = json!({"user_data": user_data});
    encode(&json!({"event": "pusher:signin_success", "data": stringified(&data)}))
}

/// App keys: `[A-Za-z0-9_-]+` (they appear in URL paths and in `auth` before the colon).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelKind {
    Public,
    Private,
    /// `private-encrypted-`: signed like private; payloads are end-to-end encrypted by the
    /// clients and relayed as they are.
    Encrypted,
    Presence,
}

impl ChannelKind {
    pub fn of(channel: &str) -> ChannelKind {
        if channel.starts_with("private-encrypted-") {
            ChannelKind::Encrypted
        } else if channel.starts_with("private-") {
            ChannelKind::Private
        } else if channel.starts_with("presence-") {
            ChannelKind::Presence
        } else {
            ChannelKind::Public
        }
    }
}

/// A decoded client frame.
#[derive(Debug)]
pub enum Command<'a> {
    Ping,
    Pong,
    Subscribe {
        channel: String,
        auth: Option<String>,
        /// Exactly as sent: the signature covers this string.
        channel_data: Option<String>,
    },
    Unsubscribe {
        channel: String,
    },
    /// `pusher:signin {auth, user_data}`: user authentication.
    Signin {
        auth: String,
        /// Exactly as sent: the signature covers this string.
        user_data: String,
    },
    ClientEvent {
        event: String,
        channel: String,
        data: Option<&'a RawValue>,
    },
}

#[derive(Deserialize)]
struct Frame<'a> {
    event: Option<String>,
    channel: Option<String>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
struct SubscribeData {
    channel: Option<String>,
    auth: Option<String>,
    channel_data: Option<String>,
    user_data: Option<String>,
}

/// A refused frame: the Pusher error code and the message.
pub type Refusal = (u16, String);

fn bad(message: impl Into<String>) -> Refusal {
    (code::GENERIC, message.into())
}

/// `data` of a pusher:* frame: an object, or the same object as a JSON string.
fn subscribe_data(raw: Option<&RawValue>) -> Result<SubscribeData, Refusal> {
    let Some(raw) = raw else {
        return Ok(SubscribeData::default());
    };
    let parsed = match serde_json::from_str::<String>(raw.get()) {
        Ok(text) => serde_json::from_str(&text),
        Err(_) => serde_json::from_str(raw.get()),
    };
    parsed.map_err(|e| {
        bad(format!(
            "data must be an object with channel, auth, channel_data: {e}"
        ))
    })
}

pub fn decode(text: &str) -> Result<Command<'_>, Refusal> {
    let frame: Frame<'_> = serde_json::from_str(text)
        .map_err(|e| bad(format!("expected {{\"event\":...,\"data\":...}}: {e}")))?;
    let event = frame.event.ok_or_else(|| bad("missing event"))?;
    match event.as_str() {
        "pusher:ping" => Ok(Command::Ping),
        "pusher:pong" => Ok(Command::Pong),
        "pusher:signin" => {
            let d = subscribe_data(frame.data)?;
            match (d.auth, d.user_data) {
                (Some(auth), Some(user_data)) => Ok(Command::Signin { auth, user_data }),
                _ => Err(bad("pusher:signin needs data.auth and data.user_data")),
            }
        }
        "pusher:subscribe" => {
            let d = subscribe_data(frame.data)?;
            Ok(Command::Subscribe {
                channel: d.channel.ok_or_else(|| bad("pusher:subscribe needs data.channel"))?,
                auth: d.auth,
                channel_data: d.channel_data,
            })
        }
        "pusher:unsubscribe" => {
            let d = subscribe_data(frame.data)?;
            Ok(Command::Unsubscribe {
                channel: d
                    .channel
                    .ok_or_else(|| bad("pusher:unsubscribe needs data.channel"))?,
            })
        }
        e if e.starts_with("client-") => {
            if e.len() > MAX_EVENT_NAME_BYTES {
                return Err(bad(format!(
                    "event names are at most {MAX_EVENT_NAME_BYTES} characters"
                )));
            }
            Ok(Command::ClientEvent {
                channel: frame
                    .channel
                    .ok_or_else(|| bad("client events need a channel"))?,
                event,
                data: frame.data,
            })
        }
        e if e.starts_with("pusher_internal:") => Err(bad(format!(
            "{e} is sent by the server only; clients may not send pusher_internal events"
        ))),
        e => Err(bad(format!(
            "unknown event {e:?}: clients send pusher:ping, pusher:subscribe, pusher:unsubscribe or client-* events"
        ))),
    }
}

fn encode<T: Serialize>(value: &T) -> Bytes {
    // Plain structs and JSON values: serializing cannot fail.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// `data` as the JSON string the protocol asks for.
fn stringified(value: &Value) -> String {
    value.to_string()
}

pub fn connection_established(socket_id: &str, activity_timeout_secs: u64) -> Bytes {
    let data = json!({"socket_id": socket_id, "activity_timeout": activity_timeout_secs});
    encode(&json!({"event": "pusher:connection_established", "data": stringified(&data)}))
}

pub fn pong() -> Bytes {
    Bytes::from_static(br#"{"event":"pusher:pong","data":"{}"}"#)
}

/// `pusher:error` with one of Pusher's codes (`close::pusher_code`).
pub fn error(code: u16, message: &str) -> Bytes {
    encode(&json!({"event": "pusher:error", "data": {"code": code, "message": message}}))
}

/// `pusher:subscription_error`, the shape soketi and pusher-js use: `{type, error, status}`.
pub fn subscription_error(channel: &str, kind: &str, message: &str, status: u16) -> Bytes {
    encode(&json!({
        "event": "pusher:subscription_error",
        "channel": channel,
        "data": {"type": kind, "error": message, "status": status},
    }))
}

/// `pusher_internal:subscription_succeeded`; `presence` is the `{"presence":{...}}` object of
/// presence channels.
pub fn subscription_succeeded(channel: &str, presence: Option<&Value>) -> Bytes {
    let data = presence.map_or_else(|| "{}".to_owned(), stringified);
    encode(&json!({
        "event": "pusher_internal:subscription_succeeded",
        "channel": channel,
        "data": data,
    }))
}

/// `pusher:cache_miss`: a cache channel has no last event for its new subscriber.
pub fn cache_miss(channel: &str) -> Bytes {
    encode(&json!({"event": "pusher:cache_miss", "channel": channel}))
}

/// The channel of one of this protocol's rooms: `pusher:{app}:{channel}` -> `channel`.
pub fn channel_of(room: &Room) -> Option<&str> {
    let rest = room.as_str().strip_prefix(ROOM_PREFIX)?;
    rest.split_once(':').map(|(_, channel)| channel)
}

#[derive(Serialize)]
struct EventFrame<'a> {
    event: &'a str,
    channel: &'a str,
    data: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
}

/// A server event (HTTP API, `data` a string) or a client event (`data` as the client sent
/// it, with `user_id` on presence channels).
pub fn event(channel: &str, p: &Publication) -> Bytes {
    encode(&EventFrame {
        event: &p.event,
        channel,
        data: &p.data,
        user_id: p.from.as_ref().map(|f| f.as_str()),
    })
}

/// `pusher_internal:subscription_count` with `{"subscription_count":N}` as a JSON string.
pub fn subscription_count(channel: &str, count: u64) -> Bytes {
    let data = json!({"subscription_count": count});
    encode(&json!({
        "event": "pusher_internal:subscription_count",
        "channel": channel,
        "data": stringified(&data),
    }))
}

/// Pusher frames of a room's events: publications, member_added (a publication, see
/// [`MEMBER_ADDED`]), member_removed (the engine's leave of an identity's last connection,
/// which also covers reaped dead nodes) and, for the apps that enable them, subscription
/// counts of public and private channels (see [`super::counts`]).
#[derive(Default)]
pub struct PusherRenderer {
    pub counts: Option<Arc<SubscriptionCounts>>,
}

impl PusherRenderer {
    /// The count frame of a join or leave on a public or private channel, when its app
    /// enables subscription count events and the coalescing window lets it through.
    fn count_frame(&self, room: &Room, channel: &str, e: &PresenceEvent) -> Option<Bytes> {
        let counts = self.counts.as_ref()?;
        if e.kind == EventKind::Update
            || ChannelKind::of(channel) == ChannelKind::Presence
            || channel.starts_with('#')
            || !counts.enabled(room)
        {
            return None;
        }
        let n = counts.changed(room, e.version, e.count)?;
        Some(subscription_count(channel, n))
    }
}

impl Renderer for PusherRenderer {
    fn render(&self, room: &Room, room_event: &RoomEvent) -> Option<Bytes> {
        let channel = channel_of(room)?;
        match room_event {
            RoomEvent::Publication(p) if p.event == MEMBER_ADDED => Some(encode(&json!({
                "event": "pusher_internal:member_added",
                "channel": channel,
                "data": stringified(&p.data),
            }))),
            RoomEvent::Publication(p) if p.event == SUBSCRIPTION_COUNT => {
                let n = p.data["subscription_count"].as_u64()?;
                Some(subscription_count(channel, n))
            }
            // Another protocol's internal publication to a room of the same name (Socket.IO
            // metadata); not part of this protocol.
            RoomEvent::Publication(p) if p.event.starts_with('\u{1}') => {
                let name = crate::protocol::server_api::server_event::server_event(p)?;
                Some(event(
                    channel,
                    &Publication {
                        event: name.to_owned(),
                        ..p.clone()
                    },
                ))
            }
            RoomEvent::Publication(p) => Some(event(channel, p)),
            RoomEvent::Presence(e)
                if e.kind == EventKind::Leave
                    && e.identity_changed
                    && ChannelKind::of(channel) == ChannelKind::Presence =>
            {
                let data = json!({"user_id": e.member.identity.as_str()});
                Some(encode(&json!({
                    "event": "pusher_internal:member_removed",
                    "channel": channel,
                    "data": stringified(&data),
                })))
            }
            RoomEvent::Presence(e) => self.count_frame(room, channel, e),
        }
    }
}

#[cfg(test)]
mod tests;
