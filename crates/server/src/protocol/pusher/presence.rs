//! Presence channel members: the signed `channel_data` a subscriber presents, and the
//! `{"presence":{ids, hash, count}}` object of subscription_succeeded and the users API.

use std::collections::HashSet;

use activenow_engine::{Identity, Member};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::codec;

/// A refused subscription: `pusher:subscription_error {type, error, status}`.
pub(super) struct SubscriptionRefusal {
    pub kind: &'static str,
    pub message: String,
    pub status: u16,
}

pub(super) fn refused(
    kind: &'static str,
    status: u16,
    message: impl Into<String>,
) -> SubscriptionRefusal {
    SubscriptionRefusal {
        kind,
        message: message.into(),
        status,
    }
}

#[derive(Deserialize)]
struct ChannelData {
    user_id: Value,
    #[serde(default)]
    user_info: Option<Box<RawValue>>,
}

/// A presence member from the signed `channel_data`: its user id and user_info.
pub(super) fn presence_member(
    channel_data: Option<&str>,
    max_info: usize,
) -> Result<(Identity, Value), SubscriptionRefusal> {
    let bad = |m: String| refused("InvalidChannelData", 400, m);
    let text = channel_data.ok_or_else(|| bad("presence channels need channel_data".into()))?;
    let data: ChannelData = serde_json::from_str(text).map_err(|e| {
        bad(format!(
            "channel_data must be a JSON object with user_id: {e}"
        ))
    })?;
    let user_id = match &data.user_id {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(bad("user_id must be a string or a number".into())),
    };
    let identity = Identity::parse(&user_id, codec::MAX_USER_ID_BYTES).map_err(|_| {
        bad(format!(
            "user_id must be 1-{} characters without control characters",
            codec::MAX_USER_ID_BYTES
        ))
    })?;
    let info = match data.user_info {
        None => Value::Object(Map::new()),
        Some(raw) if raw.get().len() > max_info => {
            return Err(bad(format!(
                "user_info is larger than {max_info} bytes (PUSHER_MAX_USER_INFO_BYTES)"
            )))
        }
        Some(raw) => serde_json::from_str(raw.get()).unwrap_or(Value::Null),
    };
    Ok((identity, info))
}

/// The presence object of subscription_succeeded and of the users API: one entry per
/// identity (a user with two tabs is one member).
pub fn presence_object(members: &[Member]) -> Value {
    let mut seen = HashSet::new();
    let mut ids = Vec::new();
    let mut hash = Map::new();
    for m in members {
        let id = m.identity.as_str();
        if seen.insert(id) {
            ids.push(Value::String(id.to_owned()));
            let info = m
                .state
                .get("user_info")
                .cloned()
                .unwrap_or_else(|| Value::Object(Map::new()));
            hash.insert(id.to_owned(), info);
        }
    }
    let count = ids.len();
    json!({"presence": {"ids": ids, "hash": hash, "count": count}})
}
