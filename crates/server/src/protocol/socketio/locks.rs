//! `lock:acquire {name, ttlMs?}` and `lock:release {name}`: named locks owned by the
//! socket's joined userId (the actor that metadata writes with `lockName` are checked
//! against).

use activenow_engine::{LockAcquire, LockRelease};
use serde_json::{json, Value};

use super::codec::ack_error;
use super::{coerce_int, Session};
use crate::close::code;

/// TTL of a lock whose request names none.
pub const DEFAULT_LOCK_TTL_MS: u64 = 30_000;

/// Longest lock name, bytes.
pub const MAX_LOCK_NAME_BYTES: usize = 256;

pub(crate) fn valid_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_LOCK_NAME_BYTES || name.chars().any(char::is_control) {
        return Err(format!(
            "lock names are 1-{MAX_LOCK_NAME_BYTES} bytes without control characters"
        ));
    }
    Ok(())
}

/// A requested TTL, defaulted and checked against `LOCK_MAX_TTL_MS`.
pub(crate) fn ttl(requested: Option<&Value>, max: u64) -> Result<u64, String> {
    let ttl = match requested {
        None | Some(Value::Null) => DEFAULT_LOCK_TTL_MS.min(max),
        Some(v) => match coerce_int(v) {
            Some(t) if t > 0 => t as u64,
            _ => return Err("ttl must be a positive integer of milliseconds".into()),
        },
    };
    if ttl > max {
        return Err(format!("ttl is longer than {max} ms (LOCK_MAX_TTL_MS)"));
    }
    Ok(ttl)
}

fn request(data: &Value) -> Result<String, Value> {
    let Some(name) = data.get("name").and_then(Value::as_str) else {
        return Err(ack_error(Some(code::LOCK_INVALID), "name must be a string"));
    };
    valid_name(name).map_err(|m| ack_error(Some(code::LOCK_INVALID), &m))?;
    Ok(name.to_owned())
}

async fn owner(session: &Session) -> Result<String, Value> {
    session.user().await.ok_or_else(|| {
        ack_error(
            Some(code::LOCK_INVALID),
            "join a presence room first: locks are owned by the joined userId",
        )
    })
}

pub(super) async fn acquire(session: &Session, data: Value) -> Value {
    let name = match request(&data) {
        Ok(n) => n,
        Err(reply) => return reply,
    };
    let owner = match owner(session).await {
        Ok(o) => o,
        Err(reply) => return reply,
    };
    let requested = data.get("ttlMs").or_else(|| data.get("ttl_ms"));
    let ttl_ms = match ttl(requested, session.app.settings.lock_max_ttl_ms) {
        Ok(t) => t,
        Err(m) => return ack_error(Some(code::LOCK_INVALID), &m),
    };
    match session.app.engine.acquire_lock(&name, &owner, ttl_ms).await {
        Ok(LockAcquire::Acquired { ttl_ms }) => {
            json!({"ok": true, "name": name, "owner": owner, "ttlMs": ttl_ms})
        }
        Ok(LockAcquire::Held(holder)) => json!({
            "ok": false,
            "error": format!("Lock \"{name}\" is held by a different user"),
            "code": code::LOCK_HELD,
            "owner": holder.owner,
            "ttlMs": holder.ttl_ms,
        }),
        Err(e) => ack_error(Some(code::INTERNAL), &format!("{e}; retry")),
    }
}

pub(super) async fn release(session: &Session, data: Value) -> Value {
    let name = match request(&data) {
        Ok(n) => n,
        Err(reply) => return reply,
    };
    let owner = match owner(session).await {
        Ok(o) => o,
        Err(reply) => return reply,
    };
    match session.app.engine.release_lock(&name, &owner).await {
        Ok(LockRelease::Released) => json!({"ok": true, "released": true}),
        Ok(LockRelease::NotHeld) => json!({"ok": true, "released": false}),
        Ok(LockRelease::HeldByOther(_)) => ack_error(
            Some(code::LOCK_NOT_OWNER),
            &format!("Lock \"{name}\" is held by a different user"),
        ),
        Err(e) => ack_error(Some(code::INTERNAL), &format!("{e}; retry")),
    }
}
