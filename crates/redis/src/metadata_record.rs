//! How a channel's metadata record is stored: this crate's own JSON (short field names), so
//! the engine's types carry no serde attributes and the client wire format can change without
//! touching stored data, or the other way round. The Lua compare-and-set never reads it (it
//! compares the separate `major` field).

use std::collections::BTreeMap;

use activenow_engine::{ChannelMetadata, MetadataEntry, StoreError};
use serde::{Deserialize, Serialize};

use crate::error::protocol;

#[derive(Serialize, Deserialize)]
struct Record {
    /// Major revision.
    m: u64,
    /// Item key -> item.
    #[serde(default)]
    i: BTreeMap<String, Item>,
}

#[derive(Serialize, Deserialize)]
struct Item {
    v: String,
    r: u64,
    /// ISO 8601 time of the last write, when stamped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t: Option<String>,
    /// The last writer, when stamped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    a: Option<String>,
}

/// The stored form of `metadata`.
pub(crate) fn encode(metadata: &ChannelMetadata) -> String {
    let record = Record {
        m: metadata.major_revision,
        i: metadata
            .items
            .iter()
            .map(|(key, e)| {
                let item = Item {
                    v: e.value.clone(),
                    r: e.revision,
                    t: e.updated.clone(),
                    a: e.author_uid.clone(),
                };
                (key.clone(), item)
            })
            .collect(),
    };
    // Strings and integers always serialize.
    serde_json::to_string(&record).unwrap_or_default()
}

pub(crate) fn decode(stored: &str) -> Result<ChannelMetadata, StoreError> {
    let record: Record =
        serde_json::from_str(stored).map_err(|e| protocol(&format!("metadata record: {e}")))?;
    Ok(ChannelMetadata {
        major_revision: record.m,
        items: record
            .i
            .into_iter()
            .map(|(key, item)| {
                let entry = MetadataEntry {
                    value: item.v,
                    revision: item.r,
                    updated: item.t,
                    author_uid: item.a,
                };
                (key, entry)
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let mut metadata = ChannelMetadata {
            major_revision: 7,
            ..ChannelMetadata::default()
        };
        metadata.items.insert(
            "topic".into(),
            MetadataEntry {
                value: "hi \"there\"".into(),
                revision: 3,
                updated: Some("2026-01-02T03:04:05.678Z".into()),
                author_uid: Some("u1".into()),
            },
        );
        metadata.items.insert(
            "mode".into(),
            MetadataEntry {
                value: String::new(),
                revision: 1,
                updated: None,
                author_uid: None,
            },
        );
        let stored = encode(&metadata);
        assert_eq!(decode(&stored).unwrap(), metadata);
        assert!(decode("not json").is_err());
        assert_eq!(
            decode(r#"{"m":2}"#).unwrap(),
            ChannelMetadata {
                major_revision: 2,
                ..ChannelMetadata::default()
            }
        );
    }
}
