//! Relayed custom events (`SOCKETIO_RELAY_EVENTS`): a joined socket's `chat:message` (or any
//! listed name) goes to the other members of its room on every node, as Pusher's client
//! events do. The event travels as an engine publication, so the Redis broker carries it
//! between nodes and each node's renderer emits it once to its Socket.IO room.
//!
//! Who may relay: a socket that joined a presence room, only to that room. What it may
//! send: `SOCKETIO_RELAY_RATE` events per second (its own bucket, apart from
//! `MAX_MESSAGES_PER_SECOND`), each at most `SOCKETIO_RELAY_MAX_BYTES` of JSON. The server
//! sets `userId` and `connId` on what it relays, overwriting whatever the client put there.

use activenow_engine::{clock, Publication};
use serde_json::{json, Map, Value};

use super::codec::{ack_error, RELAY_PUBLICATION};
use super::Session;
use crate::close::code;
use crate::transport::rate::Verdict;

/// Bytes of `value` as JSON, without building the text.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

/// What the other members receive: an object payload with `userId` and `connId` set by the
/// server; any other payload (string, number, array, none) as `{data, userId, connId}`.
fn with_sender(data: Value, user: &str, conn: &str) -> Value {
    let mut object = match data {
        Value::Object(object) => object,
        Value::Null => Map::new(),
        other => {
            let mut object = Map::new();
            object.insert("data".into(), other);
            object
        }
    };
    object.insert("userId".into(), json!(user));
    object.insert("connId".into(), json!(conn));
    Value::Object(object)
}

/// Relays `event` to the other members of the socket's room -> `{ok: true}`.
pub(super) async fn relay(session: &Session, event: &str, data: Value) -> Value {
    let app = &session.app;
    let verdict = session
        .relay_rate
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .check();
    if let Verdict::Drop(_) = verdict {
        app.metrics.rate_limited.inc();
        return ack_error(
            Some(code::RATE_LIMITED),
            &format!(
                "more than {} relayed events per second (SOCKETIO_RELAY_RATE)",
                app.settings.socketio_relay_rate
            ),
        );
    }
    let limit = app.settings.socketio_relay_max_bytes;
    if json_len(&data) > limit {
        app.metrics.errors.inc();
        return ack_error(
            Some(code::TOO_LARGE),
            &format!("payload is larger than {limit} bytes (SOCKETIO_RELAY_MAX_BYTES)"),
        );
    }
    let (room, user, conn) = {
        let inner = session.inner.lock().await;
        match (inner.joined.as_ref(), inner.conn.as_ref()) {
            (Some(joined), Some(conn)) => {
                (joined.room.clone(), joined.user.clone(), conn.id().clone())
            }
            _ => {
                app.metrics.errors.inc();
                return ack_error(
                    Some(code::NOT_JOINED),
                    "join a presence room (presence:join) before sending relayed events",
                );
            }
        }
    };
    let publication = Publication {
        event: format!("{RELAY_PUBLICATION}{event}"),
        data: with_sender(data, user.as_str(), conn.as_str()),
        from: Some(user),
        ts_ms: clock::now_ms(),
    };
    match app.engine.publish(&room, publication, Some(conn)).await {
        Ok(()) => json!({"ok": true}),
        Err(e) => ack_error(Some(code::INTERNAL), &format!("{e}; retry")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_sets_the_sender() {
        let v = with_sender(json!({"text": "hi", "userId": "forged"}), "u1", "c1");
        assert_eq!(v, json!({"text": "hi", "userId": "u1", "connId": "c1"}));
        let v = with_sender(json!("hi"), "u1", "c1");
        assert_eq!(v, json!({"data": "hi", "userId": "u1", "connId": "c1"}));
        assert_eq!(json_len(&json!({"a": 1})), 7);
    }
}
