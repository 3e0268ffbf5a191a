//! `presence:join`, `presence:heartbeat`, `presence:leave`: acks exactly as the reference
//! implementation (realtime-mesage) sends them.

use activenow_engine::{EngineError, Identity, Room, State};
use serde_json::{json, Value};
use socketioxide::extract::SocketRef;

use super::codec::{ack_error, snapshot_entry};
use super::{coerce_int, Joined, Session};
use crate::close::code;

fn invalid(message: impl AsRef<str>) -> Value {
    ack_error(Some(code::PRESENCE_INVALID), message.as_ref())
}

fn state_size(state: &State) -> usize {
    serde_json::to_vec(state).map_or(usize::MAX, |v| v.len())
}

fn engine_error(e: &EngineError) -> Value {
    match e {
        EngineError::RoomFull { limit } => ack_error(
            Some(code::ROOM_FULL),
            &format!("room holds {limit} members (MAX_ROOM_USERS)"),
        ),
        e => ack_error(Some(code::INTERNAL), &format!("{e}; retry")),
    }
}

fn string_field<'a>(data: &'a Value, name: &str) -> Option<&'a str> {
    data.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// `{roomId, userId, state?}` -> `{ok, snapshot, self: {connId, epoch}}`.
pub(super) async fn join(session: &Session, s: &SocketRef, data: Value) -> Value {
    let settings = &session.app.settings;
    let (Some(room_id), Some(user_id)) =
        (string_field(&data, "roomId"), string_field(&data, "userId"))
    else {
        return invalid("roomId and userId must be non-empty strings");
    };
    if crate::protocol::pusher::is_reserved_room(room_id) {
        return invalid("roomId: names starting with pusher: belong to the Pusher protocol");
    }
    let room = match Room::parse(room_id) {
        Ok(room) => room,
        Err(e) => return invalid(format!("roomId: {e}")),
    };
    let identity = match Identity::parse(user_id, settings.max_session_id_bytes) {
        Ok(identity) => identity,
        Err(_) => {
            return invalid(format!(
                "userId must be 1-{} bytes without control characters",
                settings.max_session_id_bytes
            ))
        }
    };
    if let Some(auth) = &session.auth {
        if auth.user.as_str() != user_id {
            return ack_error(
                Some(code::IDENTITY_MISMATCH_ACK),
                "CLIENT_AUTH=jwt: userId must be the handshake token's subject",
            );
        }
    }
    let state = match data.get("state") {
        None | Some(Value::Null) => State::new(),
        Some(Value::Object(state)) => state.clone(),
        Some(_) => return invalid("state must be an object"),
    };
    if state_size(&state) > settings.presence_max_state_bytes {
        return invalid(format!(
            "state is larger than {} bytes (PRESENCE_MAX_STATE_BYTES)",
            settings.presence_max_state_bytes
        ));
    }
    let mut inner = session.inner.lock().await;
    if inner.joined.as_ref().is_some_and(|j| j.room != room) {
        return ack_error(None, "Socket already joined a different presence room");
    }
    let Some(conn) = inner.conn.as_ref() else {
        return ack_error(None, "socket is closed");
    };
    // The Socket.IO room first, so this socket sees its own join event.
    s.join(room.as_str().to_owned());
    // Clears a reaper expiry from before the join, so the reaper watches this socket again.
    let joined = match conn.heartbeat().await {
        Ok(()) => {
            conn.join(
                room.clone(),
                identity.clone(),
                state.clone(),
                session.app.socketio.clone(),
                settings.room_limit(),
            )
            .await
        }
        Err(e) => Err(e),
    };
    let event = match joined {
        Ok(event) => event,
        Err(e) => {
            if inner.joined.is_none() {
                s.leave(room.as_str().to_owned());
            }
            return engine_error(&e);
        }
    };
    let epoch = event.member.epoch;
    let conn_id = conn.id().as_str().to_owned();
    inner.joined = Some(Joined {
        room: room.clone(),
        user: identity,
        epoch,
        state,
    });
    drop(inner);
    let snapshot: Vec<Value> = match session.app.engine.members_seen(&room).await {
        Ok(members) => members
            .iter()
            .map(|(m, seen)| snapshot_entry(m, *seen))
            .collect(),
        Err(e) => return ack_error(Some(code::INTERNAL), &format!("{e}; retry")),
    };
    json!({"ok": true, "snapshot": snapshot, "self": {"connId": conn_id, "epoch": epoch}})
}

/// `{patchState?, epoch?}` -> `{ok, changed, epoch?}`. A stale epoch changes nothing (not
/// even the TTL); a higher one is adopted; a patch that changes the state is broadcast as
/// `update`.
pub(super) async fn heartbeat(session: &Session, data: Value) -> Value {
    let requested = match data.get("epoch") {
        None | Some(Value::Null) => None,
        Some(v) => match coerce_int(v) {
            Some(e) if e >= 0 => Some(e as u64),
            _ => return invalid("epoch must be a non-negative integer"),
        },
    };
    let patch = match data.get("patchState") {
        None | Some(Value::Null) => State::new(),
        Some(Value::Object(p)) => p.clone(),
        Some(_) => return invalid("patchState must be an object"),
    };
    let mut inner = session.inner.lock().await;
    let inner = &mut *inner;
    let (Some(conn), Some(joined)) = (inner.conn.as_ref(), inner.joined.as_mut()) else {
        return json!({"ok": true, "changed": false});
    };
    if requested.is_some_and(|e| e < joined.epoch) {
        return json!({"ok": true, "changed": false, "epoch": joined.epoch});
    }
    if let Some(e) = requested {
        joined.epoch = joined.epoch.max(e);
    }
    let was_expired = conn.is_expired();
    if let Err(e) = conn.heartbeat().await {
        return engine_error(&e);
    }
    if was_expired {
        // The reaper had removed this connection; the heartbeat joined it again with a new
        // epoch, which the client must now use.
        if let Ok(members) = session.app.engine.members(&joined.room).await {
            if let Some(m) = members.iter().find(|m| &m.conn == conn.id()) {
                joined.epoch = joined.epoch.max(m.epoch);
            }
        }
    }
    let mut changed = false;
    if !patch.is_empty() {
        let mut next = joined.state.clone();
        for (k, v) in &patch {
            next.insert(k.clone(), v.clone());
        }
        if next != joined.state {
            let limit = session.app.settings.presence_max_state_bytes;
            if state_size(&next) > limit {
                return invalid(format!(
                    "state is larger than {limit} bytes (PRESENCE_MAX_STATE_BYTES)"
                ));
            }
            if let Err(e) = conn.update(&joined.room, &patch).await {
                return engine_error(&e);
            }
            joined.state = next;
            changed = true;
        }
    }
    json!({"ok": true, "changed": changed, "epoch": joined.epoch})
}

/// Leaves the joined room (if any) -> `{ok: true}`.
pub(super) async fn leave(session: &Session, s: &SocketRef) -> Value {
    let mut inner = session.inner.lock().await;
    let Some(joined) = inner.joined.take() else {
        return json!({"ok": true});
    };
    if let Some(conn) = inner.conn.as_ref() {
        if let Err(e) = conn.leave(&joined.room).await {
            return engine_error(&e);
        }
    }
    s.leave(joined.room.as_str().to_owned());
    json!({"ok": true})
}
