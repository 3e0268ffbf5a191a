//! Seed 0's wire format: server frames and client messages.

use std::borrow::Cow;

use activenow_engine::{EventKind, Renderer, Room, RoomEvent};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::close::{self, code};

fn encode<T: Serialize>(value: &T) -> Bytes {
    // Serializing these plain structs cannot fail.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

#[derive(Serialize)]
struct Typed<'a, T> {
    #[serde(rename = "type")]
    kind: &'a str,
    data: T,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JoinData<'a> {
    identity: &'a str,
    room_name: &'a str,
    joined_at: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UpdateData<'a> {
    identity: &'a str,
    room_name: &'a str,
    updated_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<&'a Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LeaveData<'a> {
    identity: &'a str,
    room_name: &'a str,
}

/// State keys the HTTP update writes and `ACTIVITY_UPDATE_PRESENCE` reads.
pub const DISPLAY_NAME: &str = "displayName";
pub const POSITION: &str = "position";

/// Room sockets: the three `ACTIVITY_*` events (one per identity, not per tab) and `sync`.
pub struct RoomRenderer;

impl Renderer for RoomRenderer {
    fn render(&self, room: &Room, event: &RoomEvent) -> Option<Bytes> {
        let e = match event {
            RoomEvent::Presence(e) => e,
            RoomEvent::Publication(p) => {
                let name = crate::protocol::server_api::server_event::server_event(p)?;
                return Some(encode(&Typed {
                    kind: "SERVER_EVENT",
                    data: serde_json::json!({
                        "roomName": room.as_str(),
                        "event": name,
                        "data": p.data,
                        "ts": p.ts_ms,
                    }),
                }));
            }
        };
        if !e.identity_changed {
            return None;
        }
        let identity = e.member.identity.as_str();
        let room_name = room.as_str();
        Some(match e.kind {
            EventKind::Join => encode(&Typed {
                kind: "ACTIVITY_JOIN_PRESENCE",
                data: JoinData {
                    identity,
                    room_name,
                    joined_at: e.member.joined_at_ms,
                },
            }),
            EventKind::Update => encode(&Typed {
                kind: "ACTIVITY_UPDATE_PRESENCE",
                data: UpdateData {
                    identity,
                    room_name,
                    updated_at: e.member.updated_at_ms,
                    display_name: e.member.state.get(DISPLAY_NAME),
                    position: e.member.state.get(POSITION),
                },
            }),
            EventKind::Leave => encode(&Typed {
                kind: "ACTIVITY_LEAVE_PRESENCE",
                data: LeaveData {
                    identity,
                    room_name,
                },
            }),
        })
    }

    fn render_count(&self, _room: &Room, count: u64) -> Option<Bytes> {
        Some(sync(count))
    }
}

pub fn sync(count: u64) -> Bytes {
    encode(&serde_json::json!({"type": "sync", "count": count}))
}

pub fn hello(sid: &str, ttl_secs: u64, count: u64) -> Bytes {
    encode(&serde_json::json!({"type": "hello", "sid": sid, "ttl": ttl_secs, "count": count}))
}

pub fn error(code: &str, message: &str) -> Bytes {
    encode(&serde_json::json!({"type": "error", "code": code, "message": message}))
}

/// The global visitors socket: `VISITOR_ONLINE` / `VISITOR_OFFLINE` per identity.
pub struct VisitorRenderer;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VisitorData<'a> {
    online: u64,
    timestamp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<&'a str>,
}

pub fn visitor_online(online: u64, timestamp: u64) -> Bytes {
    encode(&Typed {
        kind: "VISITOR_ONLINE",
        data: VisitorData {
            online,
            timestamp,
            session_id: None,
        },
    })
}

pub fn gateway_connect() -> Bytes {
    encode(&Typed {
        kind: "GATEWAY_CONNECT",
        data: "WebSocket 已连接",
    })
}

impl Renderer for VisitorRenderer {
    fn render(&self, _room: &Room, event: &RoomEvent) -> Option<Bytes> {
        let RoomEvent::Presence(e) = event else {
            return None;
        };
        if !e.identity_changed {
            return None;
        }
        match e.kind {
            EventKind::Join => Some(visitor_online(e.count, e.ts_ms)),
            EventKind::Leave => Some(encode(&Typed {
                kind: "VISITOR_OFFLINE",
                data: VisitorData {
                    online: e.count,
                    timestamp: e.ts_ms,
                    session_id: Some(e.member.identity.as_str()),
                },
            })),
            EventKind::Update => None,
        }
    }
}

/// A client message on the room and visitor sockets.
#[derive(Debug, PartialEq)]
pub enum ClientMessage {
    Heartbeat,
    UpdateSid(String),
}

/// Fields borrow from the frame: decoding a heartbeat allocates nothing.
#[derive(Deserialize)]
struct RawMessage<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    session_id: Option<Cow<'a, str>>,
    #[serde(rename = "sessionId", borrow)]
    session_id_camel: Option<Cow<'a, str>>,
}

/// What the seed's clients send tens of thousands of times a second, byte for byte.
const HEARTBEAT: &str = r#"{"type":"hb"}"#;

/// Decodes a client message, or says which error code to answer with.
pub fn decode(text: &str) -> Result<ClientMessage, (&'static str, String)> {
    if text == HEARTBEAT {
        return Ok(ClientMessage::Heartbeat);
    }
    let raw: RawMessage = serde_json::from_str(text).map_err(|e| {
        (
            code::BAD_JSON,
            format!(
                "expected a JSON object with a type: {}",
                close::clip(&e.to_string(), close::DETAIL_BYTES)
            ),
        )
    })?;
    match raw.kind.as_deref() {
        Some("hb") => Ok(ClientMessage::Heartbeat),
        // `updateSid` + `session_id` is the documented form; `updatesid` + `sessionId` is what
        // the original server parsed. Either field is accepted with either spelling.
        Some("updateSid" | "updatesid") => match raw.session_id.or(raw.session_id_camel) {
            Some(id) => Ok(ClientMessage::UpdateSid(id.into_owned())),
            None => Err((code::BAD_MESSAGE, "updateSid needs session_id".into())),
        },
        Some(other) => Err((
            code::UNKNOWN_TYPE,
            format!("unknown type {:?}", close::clip(other, close::ECHO_BYTES)),
        )),
        None => Err((code::UNKNOWN_TYPE, "missing type".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use activenow_engine::{ConnId, Identity, Member, PresenceEvent};

    fn event(kind: EventKind, identity_changed: bool) -> RoomEvent {
        let mut state = serde_json::Map::new();
        state.insert(POSITION.into(), 3.into());
        RoomEvent::Presence(PresenceEvent {
            kind,
            member: Member {
                conn: ConnId::new("c"),
                identity: Identity::new("u1"),
                state,
                joined_at_ms: 10,
                updated_at_ms: 20,
                epoch: 1,
            },
            identity_changed,
            count: 2,
            version: 7,
            ts_ms: 30,
        })
    }

    fn text(b: Option<Bytes>) -> Value {
        serde_json::from_slice(&b.expect("rendered")).unwrap()
    }

    #[test]
    fn room_events_match_seed_zero() {
        let room = Room::parse("demo").unwrap();
        let r = RoomRenderer;
        assert_eq!(
            text(r.render(&room, &event(EventKind::Join, true))),
            serde_json::json!({"type":"ACTIVITY_JOIN_PRESENCE","data":{"identity":"u1","roomName":"demo","joinedAt":10}})
        );
        assert_eq!(
            text(r.render(&room, &event(EventKind::Update, true))),
            serde_json::json!({"type":"ACTIVITY_UPDATE_PRESENCE","data":{"identity":"u1","roomName":"demo","updatedAt":20,"position":3}})
        );
        assert_eq!(
            text(r.render(&room, &event(EventKind::Leave, true))),
            serde_json::json!({"type":"ACTIVITY_LEAVE_PRESENCE","data":{"identity":"u1","roomName":"demo"}})
        );
        assert!(r.render(&room, &event(EventKind::Join, false)).is_none());
        assert_eq!(
            text(r.render_count(&room, 4)),
            serde_json::json!({"type":"sync","count":4})
        );
    }

    #[test]
    fn visitor_events_match_seed_zero() {
        let room = Room::visitors();
        let r = VisitorRenderer;
        assert_eq!(
            text(r.render(&room, &event(EventKind::Join, true))),
            serde_json::json!({"type":"VISITOR_ONLINE","data":{"online":2,"timestamp":30}})
        );
        assert_eq!(
            text(r.render(&room, &event(EventKind::Leave, true))),
            serde_json::json!({"type":"VISITOR_OFFLINE","data":{"online":2,"timestamp":30,"sessionId":"u1"}})
        );
        assert!(r.render_count(&room, 1).is_none());
        assert_eq!(
            serde_json::from_slice::<Value>(&gateway_connect()).unwrap(),
            serde_json::json!({"type":"GATEWAY_CONNECT","data":"WebSocket 已连接"})
        );
    }

    #[test]
    fn decoding() {
        assert_eq!(decode(r#"{"type":"hb"}"#), Ok(ClientMessage::Heartbeat));
        // Not byte for byte the usual heartbeat: the JSON path, escapes included.
        assert_eq!(
            decode(r#" { "type" : "hb" } "#),
            Ok(ClientMessage::Heartbeat)
        );
        assert_eq!(
            decode(r#"{"type":"h\u0062"}"#),
            Ok(ClientMessage::Heartbeat)
        );
        assert_eq!(
            decode(r#"{"type":"updateSid","session_id":"a\"b"}"#),
            Ok(ClientMessage::UpdateSid("a\"b".into()))
        );
        assert_eq!(
            decode(r#"{"type":"updateSid","session_id":"a"}"#),
            Ok(ClientMessage::UpdateSid("a".into()))
        );
        assert_eq!(
            decode(r#"{"type":"updatesid","sessionId":"b"}"#),
            Ok(ClientMessage::UpdateSid("b".into()))
        );
        assert_eq!(decode("nope").unwrap_err().0, code::BAD_JSON);
        assert_eq!(decode("[1]").unwrap_err().0, code::BAD_JSON);
        assert_eq!(
            decode(r#"{"type":"dance"}"#).unwrap_err().0,
            code::UNKNOWN_TYPE
        );
        assert_eq!(decode(r#"{"x":1}"#).unwrap_err().0, code::UNKNOWN_TYPE);
        assert_eq!(
            decode(r#"{"type":"updateSid"}"#).unwrap_err().0,
            code::BAD_MESSAGE
        );
        assert_eq!(decode(r#"{"type":7}"#).unwrap_err().0, code::BAD_JSON);
    }
}
