//! Channel metadata: the data and the rules of a write, pure (no store, no engine). The
//! engine's operations over the [`MetadataStore`](crate::store::MetadataStore) and
//! [`LockStore`](crate::store::LockStore) backends live in `engine/metadata.rs`.
//!
//! A channel, named by `(channelType, channelName)`, holds string items keyed by item key,
//! each with its own revision, and a `majorRevision` that every change bumps. Writes are
//! optimistic: the engine reads the record, computes the next one with [`apply`] (which
//! checks the caller's expected revisions) and stores it with a compare-and-set on the major
//! revision. Losing that race means someone else changed the channel in between: the engine
//! reads again and re-applies, so an expected item revision that went stale is reported as
//! [`MetadataError::Conflict`] and an unconditional write is never lost.
//!
//! No wire format here (no serde, no error codes): the protocol adapters shape acks, HTTP
//! bodies, events and codes, and a remote backend its own stored records.

use std::collections::BTreeMap;

use crate::clock;
use crate::error::StoreError;

/// Names one channel's metadata record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChannelKey {
    pub channel_type: String,
    pub channel_name: String,
}

/// One item of a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataEntry {
    pub value: String,
    pub revision: u64,
    /// ISO 8601 time of the last write, when the writer asked for `addTimestamp`.
    pub updated: Option<String>,
    /// The last writer, when it asked for `addUserId`.
    pub author_uid: Option<String>,
}

/// A channel's whole record. An unknown channel is the default: no items, major revision 0.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelMetadata {
    pub major_revision: u64,
    pub items: BTreeMap<String, MetadataEntry>,
}

/// An item as a client sends it, and as a change event reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataItem {
    pub key: String,
    pub value: Option<String>,
    /// The revision the writer expects (update) or wants (set); negative = no check.
    pub revision: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetadataOp {
    /// Replace every item.
    Set,
    /// Change existing items, each optionally checked against its revision.
    Update,
    /// Remove the named items, or all of them when none is named.
    Remove,
}

/// One write request.
#[derive(Clone, Debug)]
pub struct MetadataWrite {
    pub op: MetadataOp,
    pub items: Vec<MetadataItem>,
    /// The major revision the writer expects; `None` or negative = no check.
    pub major_revision: Option<i64>,
    /// The write is refused unless `actor` holds this lock.
    pub lock_name: Option<String>,
    pub add_timestamp: bool,
    pub add_user_id: bool,
    /// Who writes (the Socket.IO socket's joined user, or the HTTP caller's `actorUserId`).
    pub actor: Option<String>,
}

/// Size limits, from the server's settings.
#[derive(Clone, Copy, Debug)]
pub struct MetadataLimits {
    pub max_items: usize,
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
}

/// What a write did.
#[derive(Clone, Debug)]
pub struct MetadataChange {
    /// The record after the write.
    pub metadata: ChannelMetadata,
    /// The items the change event reports (the removed ones for a removal); empty when the
    /// write changed nothing, which is then not broadcast.
    pub items: Vec<MetadataItem>,
    pub changed: bool,
    pub ts_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// An expected revision is stale: someone else wrote first.
    #[error("{0}")]
    Conflict(String),
    /// `lockName` was given and the actor does not hold that lock.
    #[error("{0}")]
    Lock(String),
    /// The request breaks a rule or a limit.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid<T>(msg: String) -> Result<T, MetadataError> {
    Err(MetadataError::Invalid(msg))
}

/// Checks a write against the limits before anything is read or stored.
pub fn validate(write: &MetadataWrite, limits: &MetadataLimits) -> Result<(), MetadataError> {
    if write.op == MetadataOp::Update && write.items.is_empty() {
        return invalid("At least one metadata item is required".into());
    }
    if write.items.len() > limits.max_items {
        return invalid(format!(
            "at most {} items per channel (METADATA_MAX_ITEMS)",
            limits.max_items
        ));
    }
    for item in &write.items {
        if item.key.is_empty()
            || item.key.len() > limits.max_key_bytes
            || item.key.chars().any(char::is_control)
        {
            return invalid(format!(
                "metadata keys must be 1-{} bytes without control characters (METADATA_MAX_KEY_BYTES)",
                limits.max_key_bytes
            ));
        }
        if item
            .value
            .as_ref()
            .is_some_and(|v| v.len() > limits.max_value_bytes)
        {
            return invalid(format!(
                "metadata value of \"{}\" is longer than {} bytes (METADATA_MAX_VALUE_BYTES)",
                item.key, limits.max_value_bytes
            ));
        }
    }
    if matches!(&write.lock_name, Some(l) if l.is_empty()) {
        return invalid("lockName must not be empty".into());
    }
    Ok(())
}

/// Computes the record after `write`, or `None` when it changes nothing (removing absent
/// keys). Pure: the same rules for every backend, re-run on every compare-and-set round.
pub fn apply(
    current: &ChannelMetadata,
    write: &MetadataWrite,
    ts_ms: u64,
    limits: &MetadataLimits,
) -> Result<Option<(ChannelMetadata, Vec<MetadataItem>)>, MetadataError> {
    if let Some(expected) = write.major_revision.filter(|m| *m >= 0) {
        if expected as u64 != current.major_revision {
            return Err(MetadataError::Conflict(format!(
                "Expected major revision {expected}, but got {}",
                current.major_revision
            )));
        }
    }
    let stamp = |entry: &mut MetadataEntry| {
        if write.add_timestamp {
            entry.updated = Some(clock::iso_utc(ts_ms));
        }
        if write.add_user_id {
            if let Some(actor) = &write.actor {
                entry.author_uid = Some(actor.clone());
            }
        }
    };
    let mut next = current.clone();
    let mut touched: Vec<&str> = Vec::new();
    let mut removed = Vec::new();
    match write.op {
        MetadataOp::Set => {
            next.items.clear();
            for item in &write.items {
                let mut entry = MetadataEntry {
                    value: item.value.clone().unwrap_or_default(),
                    revision: item.revision.filter(|r| *r > 0).unwrap_or(1) as u64,
                    updated: None,
                    author_uid: None,
                };
                stamp(&mut entry);
                next.items.insert(item.key.clone(), entry);
                touched.push(&item.key);
            }
        }
        MetadataOp::Update => {
            if current.items.is_empty() {
                return invalid("Channel metadata does not exist".into());
            }
            for item in &write.items {
                let Some(entry) = next.items.get_mut(&item.key) else {
                    return invalid(format!("Metadata item \"{}\" does not exist", item.key));
                };
                if let Some(expected) = item.revision.filter(|r| *r >= 0) {
                    if expected as u64 != entry.revision {
                        return Err(MetadataError::Conflict(format!(
                            "Revision mismatch for key \"{}\"",
                            item.key
                        )));
                    }
                }
                if let Some(v) = &item.value {
                    entry.value = v.clone();
                }
                entry.revision += 1;
                stamp(entry);
                touched.push(&item.key);
            }
        }
        MetadataOp::Remove => {
            let keys: Vec<String> = if write.items.is_empty() {
                current.items.keys().cloned().collect()
            } else {
                write.items.iter().map(|i| i.key.clone()).collect()
            };
            for key in keys {
                if let Some(entry) = next.items.remove(&key) {
                    removed.push(MetadataItem {
                        key,
                        value: Some(entry.value),
                        revision: Some(entry.revision as i64),
                    });
                }
            }
            if removed.is_empty() {
                return Ok(None);
            }
        }
    }
    if next.items.len() > limits.max_items {
        return invalid(format!(
            "at most {} items per channel (METADATA_MAX_ITEMS)",
            limits.max_items
        ));
    }
    next.major_revision = current.major_revision + 1;
    let items = if write.op == MetadataOp::Remove {
        removed
    } else {
        let mut seen = std::collections::HashSet::new();
        touched
            .into_iter()
            .filter(|k| seen.insert(*k))
            .filter_map(|k| {
                let e = next.items.get(k)?;
                Some(MetadataItem {
                    key: k.to_owned(),
                    value: Some(e.value.clone()),
                    revision: Some(e.revision as i64),
                })
            })
            .collect()
    };
    Ok(Some((next, items)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: MetadataLimits = MetadataLimits {
        max_items: 3,
        max_key_bytes: 8,
        max_value_bytes: 8,
    };

    fn item(key: &str, value: Option<&str>, revision: Option<i64>) -> MetadataItem {
        MetadataItem {
            key: key.into(),
            value: value.map(Into::into),
            revision,
        }
    }

    fn write(op: MetadataOp, items: Vec<MetadataItem>) -> MetadataWrite {
        MetadataWrite {
            op,
            items,
            major_revision: None,
            lock_name: None,
            add_timestamp: false,
            add_user_id: true,
            actor: Some("u1".into()),
        }
    }

    #[test]
    fn set_update_remove() {
        let empty = ChannelMetadata::default();
        let set = write(MetadataOp::Set, vec![item("a", Some("1"), None)]);
        let (m, items) = apply(&empty, &set, 0, &LIMITS).unwrap().unwrap();
        assert_eq!((m.major_revision, m.items["a"].revision), (1, 1));
        assert_eq!(m.items["a"].author_uid.as_deref(), Some("u1"));
        assert_eq!(items, vec![item("a", Some("1"), Some(1))]);

        let upd = write(MetadataOp::Update, vec![item("a", Some("2"), Some(1))]);
        let (m, _) = apply(&m, &upd, 0, &LIMITS).unwrap().unwrap();
        assert_eq!((m.major_revision, m.items["a"].revision), (2, 2));
        let stale = apply(&m, &upd, 0, &LIMITS).unwrap_err();
        assert!(matches!(stale, MetadataError::Conflict(_)), "{stale:?}");

        let missing = write(MetadataOp::Update, vec![item("zz", Some("2"), None)]);
        assert!(matches!(
            apply(&m, &missing, 0, &LIMITS).unwrap_err(),
            MetadataError::Invalid(_)
        ));
        let none = write(MetadataOp::Remove, vec![item("zz", None, None)]);
        assert!(apply(&m, &none, 0, &LIMITS).unwrap().is_none());
        let all = write(MetadataOp::Remove, vec![]);
        let (m, removed) = apply(&m, &all, 0, &LIMITS).unwrap().unwrap();
        assert!(m.items.is_empty());
        assert_eq!(m.major_revision, 3);
        assert_eq!(removed, vec![item("a", Some("2"), Some(2))]);
    }

    #[test]
    fn major_revision_and_limits() {
        let mut set = write(MetadataOp::Set, vec![item("a", Some("1"), None)]);
        set.major_revision = Some(4);
        let e = apply(&ChannelMetadata::default(), &set, 0, &LIMITS).unwrap_err();
        assert!(matches!(e, MetadataError::Conflict(_)), "{e:?}");
        let long = write(MetadataOp::Set, vec![item("a", Some("123456789"), None)]);
        assert!(matches!(
            validate(&long, &LIMITS).unwrap_err(),
            MetadataError::Invalid(_)
        ));
        let key = write(MetadataOp::Set, vec![item("123456789", None, None)]);
        assert!(validate(&key, &LIMITS).is_err());
        let many = write(
            MetadataOp::Set,
            (0..4).map(|i| item(&i.to_string(), None, None)).collect(),
        );
        assert!(validate(&many, &LIMITS).is_err());
        assert!(validate(&write(MetadataOp::Update, vec![]), &LIMITS).is_err());
    }
}
