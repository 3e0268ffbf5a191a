//! How a member is stored, and how script replies become transitions.
//!
//! A member record is JSON that the Lua scripts read and rewrite with Redis's `cjson`. cjson
//! keeps only 14 significant digits of a number and turns `[]` into `{}`, so state values
//! are stored as their JSON *text* (strings to cjson, untouched); the numbers it does see
//! (milliseconds, epochs) have 13 digits.

use std::collections::BTreeMap;

use activenow_engine::StoreError;
use activenow_engine::{ConnId, EventKind, Identity, Member, PresenceEvent, State};
use fred::types::Value;
use serde::{Deserialize, Serialize};

use crate::error::protocol;

#[derive(Serialize, Deserialize)]
struct Record {
    id: String,
    /// State key -> the value's JSON text.
    #[serde(default)]
    st: BTreeMap<String, String>,
    j: u64,
    u: u64,
    e: u64,
}

/// The stored form of `member` (its connection is the hash field).
pub(crate) fn encode(member: &Member) -> String {
    let record = Record {
        id: member.identity.as_str().to_owned(),
        st: encode_patch(&member.state),
        j: member.joined_at_ms,
        u: member.updated_at_ms,
        e: member.epoch,
    };
    // A struct of strings and integers always serializes.
    serde_json::to_string(&record).unwrap_or_default()
}

/// State (or a patch) as key -> JSON text.
pub(crate) fn encode_patch(state: &State) -> BTreeMap<String, String> {
    state
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect()
}

pub(crate) fn decode(conn: &str, record: &str) -> Result<Member, StoreError> {
    let r: Record =
        serde_json::from_str(record).map_err(|e| protocol(&format!("member record: {e}")))?;
    let mut state = State::new();
    for (k, text) in r.st {
        // A value that is not JSON could only come from someone else writing our keys.
        if let Ok(v) = serde_json::from_str(&text) {
            state.insert(k, v);
        }
    }
    Ok(Member {
        conn: ConnId::new(conn),
        identity: Identity::new(&r.id),
        state,
        joined_at_ms: r.j,
        updated_at_ms: r.u,
        epoch: r.e,
    })
}

pub(crate) fn int(v: &Value) -> Result<i64, StoreError> {
    v.as_i64().ok_or_else(|| protocol("expected an integer"))
}

pub(crate) fn text(v: &Value) -> Result<String, StoreError> {
    v.as_string().ok_or_else(|| protocol("expected a string"))
}

/// `{kind, identity_changed, count, version, record, conn}` -> a transition (a seventh field,
/// whether the script published it, is read by [`published`]).
pub(crate) fn transition(v: Value, ts_ms: Option<u64>) -> Result<PresenceEvent, StoreError> {
    let f = v.into_array();
    if f.len() != 6 && f.len() != 7 {
        return Err(protocol("transition"));
    }
    let kind = match text(&f[0])?.as_str() {
        "j" => EventKind::Join,
        "l" => EventKind::Leave,
        "u" => EventKind::Update,
        _ => return Err(protocol("transition kind")),
    };
    let member = decode(&text(&f[5])?, &text(&f[4])?)?;
    let ts_ms = ts_ms.unwrap_or(match kind {
        EventKind::Update => member.updated_at_ms,
        _ => member.joined_at_ms,
    });
    Ok(PresenceEvent {
        kind,
        identity_changed: int(&f[1])? == 1,
        count: int(&f[2])?.max(0) as u64,
        version: int(&f[3])?.max(0) as u64,
        ts_ms,
        member,
    })
}

/// The transitions of a script that published them itself (`lua/update.lua`), each with
/// whether its publish succeeded.
pub(crate) fn published(
    v: Value,
    ts_ms: Option<u64>,
) -> Result<Vec<(PresenceEvent, bool)>, StoreError> {
    v.into_array()
        .into_iter()
        .map(|t| {
            let f = t.into_array();
            let sent = f.get(6).map(int).transpose()? == Some(1);
            Ok((transition(Value::Array(f), ts_ms)?, sent))
        })
        .collect()
}

/// A list of transitions.
pub(crate) fn transitions(v: Value, ts_ms: Option<u64>) -> Result<Vec<PresenceEvent>, StoreError> {
    v.into_array()
        .into_iter()
        .map(|t| transition(t, ts_ms))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_with_exact_numbers_and_empty_arrays() {
        let mut state = State::new();
        state.insert("position".into(), serde_json::json!(1234567890.1234567));
        state.insert("big".into(), serde_json::json!(9007199254740993u64));
        state.insert("list".into(), serde_json::json!([]));
        let m = Member {
            conn: ConnId::new("n1.7"),
            identity: Identity::new("周"),
            state,
            joined_at_ms: 1_795_392_000_123,
            updated_at_ms: 1_795_392_000_456,
            epoch: 1_795_392_000_789,
        };
        assert_eq!(decode("n1.7", &encode(&m)).unwrap(), m);
    }
}
