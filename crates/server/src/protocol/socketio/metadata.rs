//! Channel metadata requests: parsing (shared by the Socket.IO events and the HTTP API), the
//! write-then-broadcast step, and the `metadata:*` event handlers.

use activenow_engine::{
    ChannelKey, MetadataChange, MetadataError, MetadataItem, MetadataOp, MetadataWrite, Room,
};
use serde_json::{json, Map, Value};

use super::codec::{ack_error, metadata_event, MetadataResponse};
use super::{coerce_int, Session};
use crate::close::code;
use crate::host::Host;

/// Validates a channel name (a room name: the change event goes to the room of that name)
/// and type (the same rules).
pub fn channel(name: Option<&str>, kind: Option<&str>) -> Result<ChannelKey, String> {
    let (Some(name), Some(kind)) = (name, kind) else {
        return Err("channelName and channelType must be non-empty strings".into());
    };
    Room::parse(name).map_err(|e| format!("channelName: {e}"))?;
    Room::parse(kind).map_err(|e| format!("channelType: {e}"))?;
    Ok(ChannelKey {
        channel_type: kind.to_owned(),
        channel_name: name.to_owned(),
    })
}

fn options_flag(options: &Map<String, Value>, name: &str) -> Result<bool, String> {
    match options.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("options.{name} must be a boolean")),
    }
}

/// `{data?: [{key, value?, revision?}], options?: {majorRevision?, lockName?, addTimestamp?,
/// addUserId?}}` into a write by `actor`.
pub fn write_request(
    op: MetadataOp,
    body: &Value,
    actor: Option<String>,
) -> Result<MetadataWrite, String> {
    let mut items = Vec::new();
    match body.get("data") {
        None | Some(Value::Null) => {}
        Some(Value::Array(data)) => {
            for raw in data {
                let Some(key) = raw.get("key").and_then(Value::as_str) else {
                    return Err("every data item needs a string key".into());
                };
                let value = match raw.get("value") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(v)) => Some(v.clone()),
                    Some(_) => return Err(format!("value of \"{key}\" must be a string")),
                };
                let revision = match raw.get("revision") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(
                        coerce_int(v)
                            .ok_or_else(|| format!("revision of \"{key}\" must be an integer"))?,
                    ),
                };
                items.push(MetadataItem {
                    key: key.to_owned(),
                    value,
                    revision,
                });
            }
        }
        Some(_) => return Err("data must be an array of items".into()),
    }
    let empty = Map::new();
    let options = match body.get("options") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(o)) => o,
        Some(_) => return Err("options must be an object".into()),
    };
    let major_revision = match options.get("majorRevision") {
        None | Some(Value::Null) => None,
        Some(v) => Some(coerce_int(v).ok_or("options.majorRevision must be an integer")?),
    };
    let lock_name = match options.get("lockName") {
        None | Some(Value::Null) => None,
        Some(Value::String(l)) => Some(l.clone()),
        Some(_) => return Err("options.lockName must be a string".into()),
    };
    Ok(MetadataWrite {
        op,
        items,
        major_revision,
        lock_name,
        add_timestamp: options_flag(options, "addTimestamp")?,
        add_user_id: options_flag(options, "addUserId")?,
        actor,
    })
}

/// Writes, then broadcasts the change as `metadata:event` to the channel's room on every
/// node (through the engine's broker).
pub(crate) async fn write_and_publish(
    app: &Host,
    channel: &ChannelKey,
    write: &MetadataWrite,
) -> Result<MetadataChange, MetadataError> {
    let limits = app.settings.metadata_limits();
    let change = app.engine.write_metadata(channel, write, &limits).await?;
    if change.changed {
        // Validated by `channel()`.
        if let Ok(room) = Room::parse(&channel.channel_name) {
            let event = metadata_event(channel, write.op, &change, write.actor.as_deref());
            if let Err(e) = app.engine.publish(&room, event, None).await {
                tracing::warn!(error = %e, "publishing a metadata change failed");
            }
        }
    }
    Ok(change)
}

/// The wire code of a metadata error, the same for Socket.IO acks and HTTP bodies.
pub fn error_code(e: &MetadataError) -> &'static str {
    match e {
        MetadataError::Conflict(_) => code::METADATA_CONFLICT,
        MetadataError::Lock(_) => code::METADATA_LOCK,
        MetadataError::Invalid(_) => code::METADATA_INVALID,
        MetadataError::Store(_) => code::INTERNAL,
    }
}

fn error_ack(e: &MetadataError) -> Value {
    ack_error(Some(error_code(e)), &e.to_string())
}

fn success(channel: &ChannelKey, change: &MetadataChange) -> Value {
    let mut reply = json!(MetadataResponse::new(
        channel,
        &change.metadata,
        change.ts_ms
    ));
    reply["ok"] = json!(true);
    reply
}

fn channel_of(data: &Value) -> Result<ChannelKey, Value> {
    channel(
        data.get("channelName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty()),
        data.get("channelType")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty()),
    )
    .map_err(|m| ack_error(Some(code::METADATA_INVALID), &m))
}

/// `metadata:setChannel|updateChannel|removeChannel`; the actor is the joined userId.
pub(super) async fn write(session: &Session, data: Value, op: MetadataOp) -> Value {
    let channel = match channel_of(&data) {
        Ok(c) => c,
        Err(reply) => return reply,
    };
    if let Some(refused) = forbidden(session, &channel).await {
        return refused;
    }
    let write = match write_request(op, &data, session.user().await) {
        Ok(w) => w,
        Err(m) => return ack_error(Some(code::METADATA_INVALID), &m),
    };
    match write_and_publish(&session.app, &channel, &write).await {
        Ok(change) => success(&channel, &change),
        Err(e) => error_ack(&e),
    }
}

/// METADATA_WRITE and the actor rule: a write needs a joined socket (its joined userId is the
/// actor, so an unjoined socket would write as nobody and bypass locks); with CLIENT_AUTH=jwt
/// the socket must have joined the channel's room. METADATA_WRITE=server refuses them all.
async fn forbidden(session: &Session, channel: &ChannelKey) -> Option<Value> {
    let settings = &session.app.settings;
    let refuse = |m: &str| Some(ack_error(Some(code::METADATA_FORBIDDEN), m));
    if settings.metadata_write_server_only() {
        return refuse("METADATA_WRITE=server: write channel metadata over HTTP with API_KEY");
    }
    let Some((room, _)) = session.joined().await else {
        return refuse("join a presence room first: metadata writes are made as the joined userId");
    };
    if settings.client_auth_jwt() && room.as_str() != channel.channel_name {
        return refuse("CLIENT_AUTH=jwt: only members of the channel's room write its metadata");
    }
    None
}

/// `metadata:getChannel {channelName, channelType}`.
pub(super) async fn get(session: &Session, data: Value) -> Value {
    let channel = match channel_of(&data) {
        Ok(c) => c,
        Err(reply) => return reply,
    };
    match session.app.engine.metadata(&channel).await {
        Ok(metadata) => {
            let change = MetadataChange {
                metadata,
                items: Vec::new(),
                changed: false,
                ts_ms: activenow_engine::clock::now_ms(),
            };
            success(&channel, &change)
        }
        Err(e) => error_ack(&e),
    }
}

#[cfg(test)]
mod tests {
    use activenow_engine::MetadataError;

    use super::*;

    #[test]
    fn one_code_per_metadata_error() {
        let codes: Vec<&str> = [
            MetadataError::Conflict(String::new()),
            MetadataError::Lock(String::new()),
            MetadataError::Invalid(String::new()),
            MetadataError::Store(activenow_engine::StoreError::Unavailable(String::new())),
        ]
        .iter()
        .map(error_code)
        .collect();
        assert_eq!(
            codes,
            [
                "METADATA_CONFLICT",
                "METADATA_LOCK",
                "METADATA_INVALID",
                "internal"
            ]
        );
    }
}
