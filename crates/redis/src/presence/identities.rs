//! The read side of `GET /v1/rooms/...` and `GET /v1/users/...`: room figures and member
//! pages from each room's order index (one script on the room's slot), and the rooms of an
//! identity from a per-identity index.
//!
//! The identity index (`{u:<identity>}:rooms`) lives in the identity's slot, never the
//! room's, so no room script can change it in Redis Cluster. It is kept as a *superset*
//! instead, the way the room index is (see the module documentation):
//! - every join adds the room, queued with the join script (so even a racing leave that
//!   removes it first is followed by this add);
//! - a leave of an identity's last connection (and a reap) removes the room, then checks
//!   the room's order index and adds it back if the identity rejoined meanwhile;
//! - reads check every indexed room against the room itself (the room is the truth), drop
//!   the rooms where the identity no longer is, and clean them up the same way.
//!
//! So the index never misses a room the identity is in once its join returned, and a room
//! it left is at worst listed in the index (never in an answer) until the next read.

use activenow_engine::store::{RoomInfo, Transition};
use activenow_engine::{EventKind, Identity, Member, Room, StoreError};
use fred::clients::Client;
use fred::interfaces::{SetsInterface, SortedSetsInterface};
use fred::types::sorted_sets::ZRange;
use fred::types::Value;

use super::state::{room_from_index, RedisPresence};
use crate::error::{protocol, store_error};
use crate::keys::Keys;
use crate::record::{self, int, text};
use crate::scripts::{eval, eval_all, Call};

impl RedisPresence {
    pub(super) async fn index_identity(
        &self,
        identity: &Identity,
        room: &Room,
    ) -> Result<(), StoreError> {
        self.client
            .sadd::<(), _, _>(self.keys.identity_rooms(identity.as_str()), room.as_str())
            .await
            .map_err(store_error)
    }

    /// After leaves: the rooms identities left with their last connection leave their index,
    /// in the background (a read never trusts the index alone).
    pub(super) fn unindex_identities(&self, transitions: &[(Room, Transition)]) {
        let gone: Vec<(Identity, Room)> = transitions
            .iter()
            .filter(|(_, t)| t.kind == EventKind::Leave && t.identity_changed)
            .map(|(room, t)| (t.member.identity.clone(), room.clone()))
            .collect();
        if gone.is_empty() {
            return;
        }
        let (client, keys) = (self.client.clone(), self.keys.clone());
        tokio::spawn(async move { unindex(&client, &keys, gone).await });
    }

    pub(super) async fn room_info_of(&self, room: &Room) -> Result<RoomInfo, StoreError> {
        let reply = eval(
            &self.client,
            Call {
                script: &self.scripts.room_info,
                keys: self.keys.room(room).all(),
                args: Vec::new(),
            },
        )
        .await
        .map_err(store_error)?;
        let f = reply.into_array();
        if f.len() != 3 {
            return Err(protocol("room_info"));
        }
        let since_ms = match &f[2] {
            Value::Null => None,
            v => Some(
                text(v)?
                    .parse::<u64>()
                    .map_err(|_| protocol("room since"))?,
            ),
        };
        Ok(RoomInfo {
            count: int(&f[0])?.max(0) as u64,
            connections: int(&f[1])?.max(0) as u64,
            since_ms,
        })
    }

    pub(super) async fn page_of(
        &self,
        room: &Room,
        after: Option<&Identity>,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let reply = eval(
            &self.client,
            Call {
                script: &self.scripts.room_page,
                keys: self.keys.room(room).all(),
                args: vec![
                    after.map_or("", |a| a.as_str()).to_owned(),
                    limit.to_string(),
                ],
            },
        )
        .await
        .map_err(store_error)?;
        members(reply)
    }

    pub(super) async fn rooms_of(
        &self,
        identity: &Identity,
    ) -> Result<Vec<(Room, Vec<Member>)>, StoreError> {
        let names: Vec<String> = self
            .client
            .smembers(self.keys.identity_rooms(identity.as_str()))
            .await
            .map_err(store_error)?;
        let mut rooms: Vec<Room> = names.into_iter().filter_map(room_from_index).collect();
        rooms.sort();
        let calls = rooms
            .iter()
            .map(|room| Call {
                script: &self.scripts.room_identity,
                keys: self.keys.room(room).all(),
                args: vec![identity.as_str().to_owned()],
            })
            .collect();
        let replies = eval_all(&self.client, &self.scripts, calls).await;
        let mut out = Vec::new();
        let mut stale = Vec::new();
        for (room, reply) in rooms.into_iter().zip(replies) {
            let found = members(reply.map_err(store_error)?)?;
            if found.is_empty() {
                stale.push((identity.clone(), room));
            } else {
                out.push((room, found));
            }
        }
        if !stale.is_empty() {
            let (client, keys) = (self.client.clone(), self.keys.clone());
            tokio::spawn(async move { unindex(&client, &keys, stale).await });
        }
        Ok(out)
    }
}

/// `{conn, record, ...}` -> members.
fn members(reply: Value) -> Result<Vec<Member>, StoreError> {
    let flat = reply.into_array();
    let mut out = Vec::with_capacity(flat.len() / 2);
    for pair in flat.chunks(2) {
        let [conn, rec] = pair else {
            return Err(protocol("members"));
        };
        out.push(record::decode(&text(conn)?, &text(rec)?)?);
    }
    Ok(out)
}

/// Removes rooms from identities' indexes, then puts back those the identity is in again
/// (it rejoined between its leave and this removal).
async fn unindex(client: &Client, keys: &Keys, gone: Vec<(Identity, Room)>) {
    let pipeline = client.pipeline();
    for (identity, room) in &gone {
        let _: Result<(), _> = pipeline
            .srem(keys.identity_rooms(identity.as_str()), room.as_str())
            .await;
    }
    if let Err(e) = pipeline.all::<Value>().await {
        tracing::warn!(error = %e, "identity index cleanup failed");
        return;
    }
    let pipeline = client.pipeline();
    for (identity, room) in &gone {
        let id = identity.as_str();
        let _: Result<(), _> = pipeline
            .zrangebylex(
                keys.room(room).order,
                ZRange::from(format!("[{id}\0")),
                ZRange::from(format!("({id}\u{1}")),
                Some((0, 1)),
            )
            .await;
    }
    let back: Vec<Result<Vec<String>, _>> = pipeline.try_all().await;
    let pipeline = client.pipeline();
    let mut any = false;
    for ((identity, room), present) in gone.iter().zip(back) {
        // On error, put the room back: the index may hold extra rooms, never miss one.
        if present.map_or(true, |p| !p.is_empty()) {
            any = true;
            let _: Result<(), _> = pipeline
                .sadd(keys.identity_rooms(identity.as_str()), room.as_str())
                .await;
        }
    }
    if any {
        if let Err(e) = pipeline.all::<Value>().await {
            tracing::warn!(error = %e, "identity index repair failed");
        }
    }
}
