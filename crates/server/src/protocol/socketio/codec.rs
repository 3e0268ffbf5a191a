//! Socket.IO wire shapes: the `presence:event` / `metadata:event` broadcasts (emitted once
//! per room through socketioxide's room broadcast, which encodes the packet once) and the
//! acks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use activenow_engine::{
    ChannelKey, EventKind, Member, MetadataChange, MetadataEntry, MetadataItem, MetadataOp,
    Publication, Renderer, Room, RoomEvent, State,
};
use bytes::Bytes;
use futures_util::FutureExt;
use serde::Serialize;
use serde_json::{json, Map, Value};
use socketioxide::socket::Sid;
use socketioxide::SocketIo;

pub const PRESENCE_EVENT: &str = "presence:event";
pub const METADATA_EVENT: &str = "metadata:event";

/// The publication event that carries a metadata change through the engine. The leading
/// control character marks it internal: no client can publish it (the channels protocol
/// refuses control characters in event names) and other protocols' renderers skip it.
pub const METADATA_PUBLICATION: &str = "\u{1}metadata:event";

/// Marks a relayed event's publication: the leading control character keeps it internal
/// (other protocols' renderers skip it; channels clients cannot name it), the rest of the
/// publication's event name is the Socket.IO event name.
pub const RELAY_PUBLICATION: &str = "\u{1}relay:";

/// The Socket.IO protocol's renderer. One instance, so the engine's hub keeps all of this
/// node's Socket.IO subscribers of a room in one group and calls [`Renderer::render`] once
/// per event per room; the renderer then emits once to the Socket.IO room of the same name
/// and returns `None`, so nothing is queued per socket by the engine. socketioxide encodes
/// the packet once and hands each socket a clone into its bounded buffer
/// (`SOCKETIO_MAX_BUFFER` packets); beyond it the packet waits in the session's overflow
/// (vendor/engineioxide, `overflow.rs`), whose slow-consumer policy closes the session.
#[derive(Default)]
pub struct SocketIoRenderer {
    io: OnceLock<SocketIo>,
    /// Packets socketioxide could not queue (a closing socket, or one at its overflow bound).
    pub dropped: AtomicU64,
    /// Client events the server does not handle that asked for no ack, dropped.
    pub ignored: AtomicU64,
    /// Engine.IO sessions not yet counted by the engine.
    pub sessions: std::sync::Arc<super::sessions::EngineSessions>,
}

impl SocketIoRenderer {
    /// Connects the renderer to the Socket.IO server; called once when the router is built.
    pub fn attach(&self, io: SocketIo) {
        let _ = self.io.set(io);
    }

    /// Socket.IO sockets open on this node (the dashboard's count).
    pub fn socket_count(&self) -> usize {
        self.io.get().map_or(0, |io| io.sockets().len())
    }

    /// Disconnects every Socket.IO socket (server shutdown).
    pub async fn close(&self) {
        if let Some(io) = self.io.get() {
            io.close().await;
        }
    }

    /// Disconnects the kicked sockets this node holds (`DELETE /v1/users/{identity}`): they
    /// get the event `activenow:kicked` `{"reason":"kicked"}`, then a server disconnect.
    fn kick(&self, p: &activenow_engine::Publication) {
        let Some(ns) = self.io.get().and_then(|io| io.of("/")) else {
            return;
        };
        for conn in activenow_engine::kicked_conns(p) {
            let Some(socket) = conn
                .as_str()
                .parse::<Sid>()
                .ok()
                .and_then(|sid| ns.get_socket(sid))
            else {
                continue;
            };
            let _ = socket.emit(KICKED_EVENT, &serde_json::json!({"reason": "kicked"}));
            let _ = socket.disconnect();
        }
    }

    fn emit<T: Serialize + ?Sized>(&self, room: &Room, event: &str, data: &T) {
        self.emit_except(room, event, data, None);
    }

    /// Emits to the room's sockets on this node but `except` (a Socket.IO socket id).
    fn emit_except<T: Serialize + ?Sized>(
        &self,
        room: &Room,
        event: &str,
        data: &T,
        except: Option<&str>,
    ) {
        // `of` rather than `to`: once the server closed (shutdown) the namespace is gone and
        // `io.to` would panic on events still arriving from the backend.
        let Some(ns) = self.io.get().and_then(|io| io.of("/")) else {
            return;
        };
        // `socket.to(room)` leaves the socket itself out; a sender on another node is not
        // here to leave out.
        let sender = except
            .and_then(|sid| sid.parse::<Sid>().ok())
            .and_then(|sid| ns.get_socket(sid));
        let to = match sender {
            Some(socket) => socket.to(room.as_str().to_owned()),
            None => ns.to(room.as_str().to_owned()),
        };
        // The local adapter's broadcast completes in its first poll (it only pushes into
        // per-socket channels), so it runs here, in order with the room's other events.
        match to.emit(event, data).now_or_never() {
            Some(Ok(())) => {}
            Some(Err(socketioxide::BroadcastError::Socket(errors))) => {
                self.dropped
                    .fetch_add(errors.len() as u64, Ordering::Relaxed);
                tracing::debug!(room = %room, dropped = errors.len(), "socket.io buffers full");
            }
            Some(Err(e)) => tracing::warn!(error = %e, room = %room, "socket.io broadcast failed"),
            None => tracing::warn!(room = %room, "socket.io broadcast did not complete at once"),
        }
    }
}

/// What a kicked Socket.IO socket hears before its disconnect.
pub const KICKED_EVENT: &str = "activenow:kicked";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PresencePayload<'a> {
    #[serde(rename = "type")]
    kind: EventKind,
    room_id: &'a str,
    user_id: &'a str,
    conn_id: &'a str,
    state: Option<&'a State>,
    ts: u64,
    epoch: u64,
}

impl Renderer for SocketIoRenderer {
    fn render(&self, room: &Room, event: &RoomEvent) -> Option<Bytes> {
        match event {
            // Every connection's transition, not only the identity's: Socket.IO clients
            // track connections (connId).
            RoomEvent::Presence(e) => {
                let payload = PresencePayload {
                    kind: e.kind,
                    room_id: room.as_str(),
                    user_id: e.member.identity.as_str(),
                    conn_id: e.member.conn.as_str(),
                    state: (e.kind != EventKind::Leave).then_some(&e.member.state),
                    ts: e.ts_ms,
                    epoch: e.member.epoch,
                };
                self.emit(room, PRESENCE_EVENT, &payload);
            }
            RoomEvent::Publication(p) if p.event == METADATA_PUBLICATION => {
                self.emit(room, METADATA_EVENT, &p.data);
            }
            RoomEvent::Publication(p) if p.event.starts_with(RELAY_PUBLICATION) => {
                let event = &p.event[RELAY_PUBLICATION.len()..];
                let sender = p.data.get("connId").and_then(Value::as_str);
                self.emit_except(room, event, &p.data, sender);
            }
            RoomEvent::Publication(p) if p.event == activenow_engine::KICK_PUBLICATION => {
                self.kick(p);
            }
            RoomEvent::Publication(p) => {
                if let Some(name) = crate::protocol::server_api::server_event::server_event(p) {
                    self.emit(room, name, &p.data);
                }
            }
        }
        None
    }
}

/// A snapshot entry of `presence:join`'s ack; `last_seen_ms` follows heartbeats (see
/// `Engine::members_seen`: exact for this node's sockets, at most one reaper tick old for
/// other nodes').
pub fn snapshot_entry(m: &Member, last_seen_ms: u64) -> Value {
    json!({
        "connId": m.conn.as_str(),
        "userId": m.identity.as_str(),
        "state": m.state,
        "lastSeenMs": last_seen_ms,
        "epoch": m.epoch,
    })
}

/// The body of a metadata ack (with `ok: true`) and of the HTTP metadata responses.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataResponse<'a> {
    pub timestamp: u64,
    pub channel_name: &'a str,
    pub channel_type: &'a str,
    pub total_count: usize,
    pub major_revision: u64,
    pub metadata: Entries<'a>,
}

/// A channel's items as `{key: {value, revision, updated?, authorUid?}}`, in this field order
/// (an HTTP body is written straight from it).
pub struct Entries<'a>(pub &'a BTreeMap<String, MetadataEntry>);

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryWire<'a> {
    value: &'a str,
    revision: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    author_uid: Option<&'a str>,
}

impl Serialize for Entries<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(key, e)| {
            let entry = EntryWire {
                value: &e.value,
                revision: e.revision,
                updated: e.updated.as_deref(),
                author_uid: e.author_uid.as_deref(),
            };
            (key, entry)
        }))
    }
}

/// One item of a change event: `{key, value?, revision?}`.
pub fn metadata_item(item: &MetadataItem) -> Value {
    let mut out = Map::new();
    out.insert("key".into(), json!(item.key));
    if let Some(value) = &item.value {
        out.insert("value".into(), json!(value));
    }
    if let Some(revision) = item.revision {
        out.insert("revision".into(), json!(revision));
    }
    Value::Object(out)
}

/// `set`, `update` or `remove`.
pub fn metadata_operation(op: MetadataOp) -> &'static str {
    match op {
        MetadataOp::Set => "set",
        MetadataOp::Update => "update",
        MetadataOp::Remove => "remove",
    }
}

impl<'a> MetadataResponse<'a> {
    pub fn new(
        channel: &'a ChannelKey,
        metadata: &'a activenow_engine::ChannelMetadata,
        ts_ms: u64,
    ) -> Self {
        MetadataResponse {
            timestamp: ts_ms,
            channel_name: &channel.channel_name,
            channel_type: &channel.channel_type,
            total_count: metadata.items.len(),
            major_revision: metadata.major_revision,
            metadata: Entries(&metadata.items),
        }
    }
}

/// The `metadata:event` payload of a change, as a publication for the channel's room.
pub fn metadata_event(
    channel: &ChannelKey,
    op: MetadataOp,
    change: &MetadataChange,
    author: Option<&str>,
) -> Publication {
    let mut data = json!({
        "channelName": channel.channel_name,
        "channelType": channel.channel_type,
        "operation": metadata_operation(op),
        "items": change.items.iter().map(metadata_item).collect::<Vec<_>>(),
        "majorRevision": change.metadata.major_revision,
        "timestamp": change.ts_ms,
    });
    if let Some(author) = author {
        data["authorUid"] = json!(author);
    }
    Publication {
        event: METADATA_PUBLICATION.into(),
        data,
        from: author.map(activenow_engine::Identity::new),
        ts_ms: change.ts_ms,
    }
}

/// `{ok:false, error}` with an optional `code`.
pub fn ack_error(code: Option<&str>, message: &str) -> Value {
    match code {
        Some(code) => json!({"ok": false, "error": message, "code": code}),
        None => json!({"ok": false, "error": message}),
    }
}

#[cfg(test)]
mod tests {
    use activenow_engine::ChannelMetadata;

    use super::*;

    /// The HTTP body is written straight from [`MetadataResponse`]: its bytes, field order
    /// included, are the wire format.
    #[test]
    fn metadata_bodies_keep_their_wire_shape() {
        let channel = ChannelKey {
            channel_type: "room".into(),
            channel_name: "r1".into(),
        };
        let mut metadata = ChannelMetadata {
            major_revision: 4,
            ..ChannelMetadata::default()
        };
        metadata.items.insert(
            "a".into(),
            MetadataEntry {
                value: "x".into(),
                revision: 2,
                updated: Some("2026-01-01T00:00:00.000Z".into()),
                author_uid: Some("u1".into()),
            },
        );
        metadata.items.insert(
            "b".into(),
            MetadataEntry {
                value: "y".into(),
                revision: 1,
                updated: None,
                author_uid: None,
            },
        );
        let body = serde_json::to_string(&MetadataResponse::new(&channel, &metadata, 9)).unwrap();
        assert_eq!(
            body,
            r#"{"timestamp":9,"channelName":"r1","channelType":"room","totalCount":2,"majorRevision":4,"metadata":{"a":{"value":"x","revision":2,"updated":"2026-01-01T00:00:00.000Z","authorUid":"u1"},"b":{"value":"y","revision":1}}}"#
        );
        let item = MetadataItem {
            key: "a".into(),
            value: None,
            revision: Some(3),
        };
        assert_eq!(metadata_item(&item), json!({"key": "a", "revision": 3}));
        assert_eq!(metadata_operation(MetadataOp::Remove), "remove");
    }
}
