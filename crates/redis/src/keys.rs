//! Key and channel names. Every key carries a hash tag (the text between `{` and `}`), so the
//! keys a script touches together live in one Redis Cluster slot:
//!
//! - per room, tag `{r:<room>}`: members, identities, seen, version, tombstones, member order,
//!   occupied-since, and the room's sharded
//!   pub/sub channel. The `r:` inside the braces keeps the tag non-empty even for a room
//!   whose name starts with `}` (a `}` inside a name only shortens the tag, the same way for
//!   every key of that room, so they still share a slot).
//! - global, tag `{g}`: the room index, the node registry and the stats history.
//! - per day, tag `{d:<date>}`: the peak and the distinct-visitors HyperLogLog.
//! - push sessions, tag `{s}`: each session's hash and push list, the index of all sessions
//!   and the due set, so the expiry claim is one script on one slot.
//! - online-status records, tag `{o}`: each player's hash and the online/offline indexes, so
//!   a status change moves the record and its index entry in one script.
//! - per channel, tag `{m:<type length>:<type>:<name>}`: its metadata record (the length
//!   keeps `("a:b", "c")` and `("a", "b:c")` apart).
//! - per lock, tag `{l:<name>}`: the lock (value: owner; Redis `PX` expiry).
//! - per identity, tag `{u:<identity>}`: the rooms it may be in (a superset, kept beside the
//!   room scripts: see `presence/identities.rs`).

use activenow_engine::metadata::ChannelKey;
use activenow_engine::Room;

#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: String,
}

/// The keys of one room; `all` gives the seven the room scripts take, in their order.
pub(crate) struct RoomKeys {
    pub members: String,
    pub identities: String,
    pub seen: String,
    pub version: String,
    /// HASH identity -> 1: leaves announced after Redis lost the room (see `forget.lua`).
    pub gone: String,
    /// ZSET `identity \0 conn`, scores 0: member pages and one identity's connections.
    pub order: String,
    /// STRING: server-clock ms of the first join since the room was last empty.
    pub since: String,
}

impl RoomKeys {
    /// The seven keys, moved out (no copy), for a call that needs nothing else of them.
    pub fn into_all(self) -> Vec<String> {
        vec![
            self.members,
            self.identities,
            self.seen,
            self.version,
            self.gone,
            self.order,
            self.since,
        ]
    }

    pub fn all(&self) -> Vec<String> {
        vec![
            self.members.clone(),
            self.identities.clone(),
            self.seen.clone(),
            self.version.clone(),
            self.gone.clone(),
            self.order.clone(),
            self.since.clone(),
        ]
    }
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    fn room_tag(&self, room: &Room) -> String {
        format!("{}{{r:{}}}", self.prefix, room.as_str())
    }

    pub fn room(&self, room: &Room) -> RoomKeys {
        let tag = self.room_tag(room);
        RoomKeys {
            members: format!("{tag}:m"),
            identities: format!("{tag}:i"),
            seen: format!("{tag}:s"),
            version: format!("{tag}:v"),
            gone: format!("{tag}:g"),
            order: format!("{tag}:o"),
            since: format!("{tag}:t"),
        }
    }

    /// The room's sharded pub/sub channel (same slot as its keys).
    pub fn channel(&self, room: &Room) -> String {
        format!("{}:ev", self.room_tag(room))
    }

    /// SET of rooms that may be non-empty (a superset: see `presence.rs`).
    pub fn rooms(&self) -> String {
        format!("{}{{g}}:rooms", self.prefix)
    }

    /// ZSET node incarnation -> its last reaper tick (server clock, ms).
    pub fn nodes(&self) -> String {
        format!("{}{{g}}:nodes", self.prefix)
    }

    /// A node incarnation's liveness key (value: node id; expires after the lookback).
    pub fn node(&self, incarnation: &str) -> String {
        format!("{}{{g}}:node:{incarnation}", self.prefix)
    }

    /// STRING: a random id written once into an empty Redis; when it changes, Redis lost its
    /// data (restarted empty, flushed) and nodes re-assert silently (see `reconcile.rs`).
    pub fn epoch(&self) -> String {
        format!("{}{{g}}:epoch", self.prefix)
    }

    /// ZSET node incarnation -> the last tick on which it was re-asserted and listening.
    pub fn ready(&self) -> String {
        format!("{}{{g}}:ready", self.prefix)
    }

    /// Held (`SET NX PX`) by the node sweeping for dead nodes' connections this tick.
    pub fn sweep(&self) -> String {
        format!("{}{{g}}:sweep", self.prefix)
    }

    /// HASH `major` (decimal) and `json` (the whole `ChannelMetadata`).
    pub fn metadata(&self, channel: &ChannelKey) -> String {
        format!(
            "{}{{m:{}:{}:{}}}",
            self.prefix,
            channel.channel_type.len(),
            channel.channel_type,
            channel.channel_name
        )
    }

    /// SET of the rooms `identity` may be in (a superset of those it is in).
    pub fn identity_rooms(&self, identity: &str) -> String {
        format!("{}{{u:{identity}}}:rooms", self.prefix)
    }

    /// STRING owner, expiring on Redis' clock.
    pub fn lock(&self, name: &str) -> String {
        format!("{}{{l:{name}}}", self.prefix)
    }

    pub fn day_peak(&self, date: &str) -> String {
        format!("{}{{d:{date}}}:max", self.prefix)
    }

    /// The operator's history: a sorted set of every node's samples, scored by slot.
    pub fn stats_history(&self) -> String {
        format!("{}{{g}}:stats", self.prefix)
    }

    pub fn day_visitors(&self, date: &str) -> String {
        format!("{}{{d:{date}}}:hll", self.prefix)
    }
}

/// The keys of one push session, in the order the session scripts take them.
pub(crate) struct SessionKeys {
    pub hash: String,
    pub pushes: String,
    pub index: String,
    pub due: String,
}

impl Keys {
    /// Prefix of every session key; the expiry script appends `h:<id>` / `p:<id>`.
    pub fn sessions_prefix(&self) -> String {
        format!("{}{{s}}:", self.prefix)
    }

    /// ZSET session id -> removal time (expiry + retention), ms.
    pub fn sessions_index(&self) -> String {
        format!("{}index", self.sessions_prefix())
    }

    /// ZSET unfinished session id -> expiry, ms.
    pub fn sessions_due(&self) -> String {
        format!("{}due", self.sessions_prefix())
    }

    pub fn session(&self, id: &str) -> SessionKeys {
        let p = self.sessions_prefix();
        SessionKeys {
            hash: format!("{p}h:{id}"),
            pushes: format!("{p}p:{id}"),
            index: self.sessions_index(),
            due: self.sessions_due(),
        }
    }
}

impl Keys {
    /// Prefix of the players' record hashes (`<prefix>{o}:h:<player>`).
    pub fn online_prefix(&self) -> String {
        format!("{}{{o}}:h:", self.prefix)
    }

    /// The record hash, the online index (ZSET, scores 0, id order) and the offline index
    /// (ZSET player -> removal time), in the order `lua/online.lua` takes them.
    pub fn online(&self, player: &str) -> Vec<String> {
        vec![
            format!("{}{player}", self.online_prefix()),
            format!("{}{{o}}:online", self.prefix),
            format!("{}{{o}}:offline", self.prefix),
        ]
    }
}

/// The hash tag Redis Cluster hashes for `key`, per the cluster spec.
#[cfg(test)]
fn hash_tag(key: &str) -> &str {
    if let Some(open) = key.find('{') {
        if let Some(len) = key[open + 1..].find('}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_keys_and_channel_share_one_tag() {
        let keys = Keys::new("an:");
        for name in ["demo", "}starts", "a}b{c", "周报 第一章", "{x}"] {
            let room = Room::parse(name).unwrap();
            let k = keys.room(&room);
            let tag = hash_tag(&k.members);
            assert!(!tag.is_empty());
            for other in k.all().iter().chain([&keys.channel(&room)]) {
                assert_eq!(hash_tag(other), tag, "{name}");
            }
        }
        assert_eq!(hash_tag(&keys.rooms()), hash_tag(&keys.nodes()));
        assert_eq!(hash_tag(&keys.nodes()), hash_tag(&keys.node("n1/1")));
        assert_eq!(
            hash_tag(&keys.day_peak("2026-11-23")),
            hash_tag(&keys.day_visitors("2026-11-23"))
        );
        for id in ["s1", "}x", "a{b}c"] {
            let s = keys.session(id);
            for other in [&s.pushes, &s.index, &s.due] {
                assert_eq!(hash_tag(other), hash_tag(&s.hash), "{id}");
            }
            let o = keys.online(id);
            assert!(o.iter().all(|k| hash_tag(k) == "o"), "{id}");
        }
        assert_eq!(hash_tag(&keys.session("x").hash), "s");
    }

    #[test]
    fn metadata_keys_keep_type_and_name_apart() {
        let keys = Keys::new("an:");
        let key = |t: &str, n: &str| {
            keys.metadata(&ChannelKey {
                channel_type: t.into(),
                channel_name: n.into(),
            })
        };
        assert_ne!(key("a:b", "c"), key("a", "b:c"));
        assert_eq!(key("chat", "room1"), "an:{m:4:chat:room1}");
        assert_eq!(keys.lock("x"), "an:{l:x}");
    }
}
