//! Seed 2's wire format (SPEC §6): client commands, the replies to the actor, the `message`
//! delivery (encoded once per publication by [`ChannelRenderer`]) and the channel name rule.

use activenow_engine::{Publication, Renderer, Room, RoomEvent};
use bytes::Bytes;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::close::channel_code as code;

/// The event of a subscribe or publish that names none, as seed 2's server defaulted it.
pub const DEFAULT_EVENT: &str = "signal:all";

/// Longest event name, bytes: a protocol rule, like the channel name rule (events are
/// echoed in replies and kept per subscription, so they stay short).
pub const MAX_EVENT_BYTES: usize = 128;

/// Seed 2's rule: 2-12 characters, each a CJK ideograph (U+4E00-U+9FA5), an ASCII letter or
/// digit, a space, `_` or `-`.
pub fn valid_channel(name: &str) -> bool {
    let n = name.chars().count();
    (2..=12).contains(&n)
        && name.chars().all(|c| {
            matches!(c, '\u{4e00}'..='\u{9fa5}' | 'a'..='z' | 'A'..='Z' | '0'..='9' | ' ' | '_' | '-')
        })
}

/// A decoded client message.
#[derive(Debug)]
pub enum Command<'a> {
    Subscribe {
        channel: String,
        event: String,
    },
    Unsubscribe {
        channel: String,
    },
    Publish {
        channel: String,
        event: String,
        /// The `data` exactly as sent, so its size is what the client sent.
        data: &'a RawValue,
    },
}

#[cfg(test)]
impl PartialEq for Command<'_> {
    fn eq(&self, other: &Self) -> bool {
        format!("{self:?}") == format!("{other:?}")
    }
}

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(rename = "type")]
    kind: Option<String>,
    channel: Option<String>,
    event: Option<String>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

/// A refused message: the error code and what to tell the client.
pub type Refusal = (&'static str, String);

/// Decodes a client message. Channel names are checked by the handler (INVALID_CHANNEL),
/// everything structural here (BAD_MESSAGE).
pub fn decode(text: &str) -> Result<Command<'_>, Refusal> {
    let raw: Raw<'_> = serde_json::from_str(text).map_err(|e| {
        (
            code::BAD_MESSAGE,
            format!(
                "expected a JSON object with type, channel, event, data: {}",
                crate::close::clip(&e.to_string(), crate::close::DETAIL_BYTES)
            ),
        )
    })?;
    let kind = raw
        .kind
        .ok_or_else(|| (code::BAD_MESSAGE, "missing type".to_owned()))?;
    let channel = || {
        raw.channel
            .clone()
            .ok_or_else(|| (code::BAD_MESSAGE, format!("{kind} needs a channel")))
    };
    let event = || match raw.event.as_deref() {
        None | Some("") => Ok(DEFAULT_EVENT.to_owned()),
        Some(e) if e.len() > MAX_EVENT_BYTES || e.chars().any(char::is_control) => Err((
            code::BAD_MESSAGE,
            format!("event must be at most {MAX_EVENT_BYTES} bytes without control characters"),
        )),
        Some(e) => Ok(e.to_owned()),
    };
    match kind.as_str() {
        "subscribe" => Ok(Command::Subscribe {
            channel: channel()?,
            event: event()?,
        }),
        "unsubscribe" => Ok(Command::Unsubscribe {
            channel: channel()?,
        }),
        "publish" => Ok(Command::Publish {
            channel: channel()?,
            event: event()?,
            data: raw
                .data
                .ok_or_else(|| (code::BAD_MESSAGE, "publish needs data".to_owned()))?,
        }),
        other => Err((
            code::BAD_MESSAGE,
            format!(
                "unknown type {:?}: expected subscribe, unsubscribe or publish",
                crate::close::clip(other, crate::close::ECHO_BYTES)
            ),
        )),
    }
}

/// A publish's `data`: it must be a JSON object, since the server adds `from` to it.
pub fn data_object(raw: &RawValue) -> Result<Map<String, Value>, Refusal> {
    serde_json::from_str(raw.get()).map_err(|_| {
        (
            code::BAD_MESSAGE,
            "publish data must be a JSON object".to_owned(),
        )
    })
}

fn encode<T: Serialize>(value: &T) -> Bytes {
    // Serializing these plain structs and JSON values cannot fail.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

#[derive(Serialize)]
struct Ack<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    channel: &'a str,
    data: AckData<'a>,
}

#[derive(Serialize)]
struct AckData<'a> {
    status: &'a str,
    room: &'a str,
    event: &'a str,
}

/// `{"type":"subscribed","channel":C,"data":{"status":"success","room":C,"event":E}}`
pub fn subscribed(channel: &str, event: &str) -> Bytes {
    ack("subscribed", channel, event)
}

/// `{"type":"unsubscribed","channel":C,"data":{"status":"success","room":C,"event":E}}`
pub fn unsubscribed(channel: &str, event: &str) -> Bytes {
    ack("unsubscribed", channel, event)
}

fn ack(kind: &str, channel: &str, event: &str) -> Bytes {
    encode(&Ack {
        kind,
        channel,
        data: AckData {
            status: "success",
            room: channel,
            event,
        },
    })
}

/// `{"type":"error","error":{"code":CODE,"message":"..."}}`
pub fn error(code: &str, message: &str) -> Bytes {
    encode(&serde_json::json!({"type": "error", "error": {"code": code, "message": message}}))
}

#[derive(Serialize)]
struct Delivery<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    channel: &'a str,
    event: &'a str,
    data: WithFrom<'a>,
    timestamp: u64,
}

/// A publication's data with the server's `from` in place of any the client sent.
struct WithFrom<'a> {
    data: &'a Value,
    from: Option<&'a str>,
}

impl Serialize for WithFrom<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self.data, self.from) {
            (Value::Object(map), Some(from)) => {
                let mut out = s.serialize_map(None)?;
                for (k, v) in map.iter().filter(|(k, _)| k.as_str() != "from") {
                    out.serialize_entry(k, v)?;
                }
                out.serialize_entry("from", from)?;
                out.end()
            }
            (data, _) => data.serialize(s),
        }
    }
}

/// `{"type":"message","channel":C,"event":E,"data":{...,"from":U},"timestamp":ms}`
pub fn message(channel: &str, p: &Publication) -> Bytes {
    encode(&Delivery {
        kind: "message",
        channel,
        event: &p.event,
        data: WithFrom {
            data: &p.data,
            from: p.from.as_ref().map(|f| f.as_str()),
        },
        timestamp: p.ts_ms,
    })
}

/// Channel rooms are a namespace of their own among the engine's internal rooms, so that
/// no unauthenticated endpoint (`/v1/ws`, Socket.IO) can join one and take one of its
/// CHANNEL_MAX_USERS places: their names start with a control character, which no
/// client-supplied room name may contain.
const CHANNEL_ROOM_PREFIX: &str = "channel:";

/// The engine room of a (validated) channel name.
pub fn room_of(channel: &str) -> Room {
    Room::internal(&format!("{CHANNEL_ROOM_PREFIX}{channel}"))
}

/// The channel name of a channel room.
pub fn channel_of(room: &Room) -> &str {
    let name = room.as_str().trim_start_matches('\u{1}');
    name.strip_prefix(CHANNEL_ROOM_PREFIX).unwrap_or(name)
}

/// Channel sockets see publications only. Presence transitions of the room (a subscriber of
/// any protocol arriving or leaving) are not part of seed 2's protocol: its clients announce
/// themselves by publishing (`discover`), and an unknown frame type would reach their message
/// handlers. Counts are not shown either.
pub struct ChannelRenderer;

impl Renderer for ChannelRenderer {
    fn render(&self, room: &Room, event: &RoomEvent) -> Option<Bytes> {
        match event {
            RoomEvent::Publication(p) if p.event.starts_with('\u{1}') => {
                // A server API publication, or another protocol's internal one (skipped).
                let name = crate::protocol::server_api::server_event::server_event(p)?;
                Some(message(
                    channel_of(room),
                    &Publication {
                        event: name.to_owned(),
                        ..p.clone()
                    },
                ))
            }
            RoomEvent::Publication(p) => Some(message(channel_of(room), p)),
            RoomEvent::Presence(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use activenow_engine::Identity;
    use serde_json::json;

    fn value(b: Bytes) -> Value {
        serde_json::from_slice(&b).unwrap()
    }

    #[test]
    fn channel_names() {
        for ok in [
            "ab",
            "房间",
            "中文房间 1",
            "a_b-c",
            "123456789012",
            "Room 42",
            "一丁",
        ] {
            assert!(valid_channel(ok), "{ok:?} should be valid");
        }
        for bad in [
            "a",
            "",
            "1234567890123",
            "bad!name",
            "a/b",
            "emoji😀",
            "\u{9fa6}\u{9fa6}",
            "tab\there",
            "ｆｕｌｌ",
            "é é",
        ] {
            assert!(!valid_channel(bad), "{bad:?} should be invalid");
        }
        // Length counts characters, not bytes: 12 CJK characters are 36 bytes.
        assert!(valid_channel(&"中".repeat(12)));
        assert!(!valid_channel(&"中".repeat(13)));
    }

    #[test]
    fn decoding() {
        assert_eq!(
            decode(r#"{"type":"subscribe","channel":"ab","event":"e"}"#),
            Ok(Command::Subscribe {
                channel: "ab".into(),
                event: "e".into()
            })
        );
        assert_eq!(
            decode(r#"{"type":"subscribe","channel":"ab"}"#),
            Ok(Command::Subscribe {
                channel: "ab".into(),
                event: DEFAULT_EVENT.into()
            })
        );
        assert_eq!(
            decode(r#"{"type":"unsubscribe","channel":"ab"}"#),
            Ok(Command::Unsubscribe {
                channel: "ab".into()
            })
        );
        match decode(r#"{"type":"publish","channel":"ab","data":{"x":[1, 2]}}"#).unwrap() {
            Command::Publish { event, data, .. } => {
                assert_eq!(event, DEFAULT_EVENT);
                assert_eq!(data.get(), r#"{"x":[1, 2]}"#);
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            "nope",
            "[]",
            r#"{"channel":"ab"}"#,
            r#"{"type":"dance"}"#,
            r#"{"type":"subscribe"}"#,
            r#"{"type":"subscribe","channel":7}"#,
            r#"{"type":"publish","channel":"ab"}"#,
        ] {
            assert_eq!(decode(bad).unwrap_err().0, code::BAD_MESSAGE, "{bad}");
        }
        let long = format!(
            r#"{{"type":"subscribe","channel":"ab","event":"{}"}}"#,
            "e".repeat(MAX_EVENT_BYTES + 1)
        );
        assert_eq!(decode(&long).unwrap_err().0, code::BAD_MESSAGE);
        let raw: Box<RawValue> = serde_json::from_str("[1]").unwrap();
        assert!(data_object(&raw).is_err());
    }

    #[test]
    fn frames_match_spec() {
        assert_eq!(
            value(subscribed("ab", "signal:all")),
            json!({"type":"subscribed","channel":"ab","data":{"status":"success","room":"ab","event":"signal:all"}})
        );
        assert_eq!(
            value(unsubscribed("ab", "e")),
            json!({"type":"unsubscribed","channel":"ab","data":{"status":"success","room":"ab","event":"e"}})
        );
        assert_eq!(
            value(error(code::ROOM_FULL, "full")),
            json!({"type":"error","error":{"code":"ROOM_FULL","message":"full"}})
        );
    }

    #[test]
    fn delivery_carries_the_servers_from() {
        let p = Publication {
            event: "signal:all".into(),
            data: json!({"type":"discover","from":"forged","userType":"desktop"}),
            from: Some(Identity::new("u1")),
            ts_ms: 1234,
        };
        let room = room_of("ab");
        assert_eq!(channel_of(&room), "ab");
        assert!(room.is_internal());
        let frame = ChannelRenderer
            .render(&room, &RoomEvent::Publication(p))
            .unwrap();
        assert_eq!(
            value(frame),
            json!({"type":"message","channel":"ab","event":"signal:all",
                   "data":{"type":"discover","from":"u1","userType":"desktop"},"timestamp":1234})
        );
    }
}
