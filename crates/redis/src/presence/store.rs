//! The [`PresenceStore`] contract on [`RedisPresence`]: each call is one Lua script per room
//! (see the module documentation), with liveness, reaping and restoring in their own files.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use activenow_engine::store::{JoinOutcome, PresenceStore, RoomInfo, Transition, UpdateTarget};
use activenow_engine::{ConnId, Identity, Member, Room, State, StoreError};
use async_trait::async_trait;
use fred::interfaces::{ClientLike, HashesInterface, SetsInterface};
use fred::types::Value;

use super::outage::{matching, Departed};
use super::state::{room_from_index, RedisPresence, PING_TIMEOUT};
use crate::broker;
use crate::error::{protocol, store_error};
use crate::record::{self, int};
use crate::scripts::{eval, Call};

#[async_trait]
impl PresenceStore for RedisPresence {
    async fn join(
        &self,
        room: &Room,
        member: Member,
        limit: Option<u64>,
    ) -> Result<JoinOutcome, StoreError> {
        self.cancel_pending(room, &member.conn);
        let name = room.as_str().to_owned();
        let args = vec![
            member.conn.as_str().to_owned(),
            member.identity.as_str().to_owned(),
            record::encode(&member),
            limit.unwrap_or(0).to_string(),
        ];
        // One round trip instead of three: the commands are queued on one connection in
        // this order. Indexed before the script, so a node dying right after it leaves a
        // findable room; and again after, because an index cleanup may have run in between
        // (that only matters when the room was empty, but costs less than a round trip).
        // The identity index is added to on every join, after the script: see identities.rs.
        let (before, reply, after, by_identity) = tokio::join!(
            self.index(vec![name.clone()]),
            eval(
                &self.client,
                Call {
                    script: &self.scripts.join,
                    keys: self.keys.room(room).into_all(),
                    args,
                },
            ),
            self.index(vec![name]),
            self.index_identity(&member.identity, room),
        );
        before?;
        let mut f = reply.map_err(store_error)?.into_array();
        if f.first().map(int).transpose()? != Some(1) {
            return Ok(JoinOutcome::Full);
        }
        if f.len() != 3 {
            return Err(protocol("join"));
        }
        let was_empty = int(&f[2])? == 1;
        let t = record::transition(f.swap_remove(1), Some(member.joined_at_ms))?;
        if was_empty {
            after?;
        }
        by_identity?;
        self.local_add(&member, room);
        Ok(JoinOutcome::Joined(t))
    }

    async fn leave(
        &self,
        memberships: &[(Room, ConnId)],
        ts_ms: u64,
    ) -> Result<Vec<(Room, Transition)>, StoreError> {
        let mut departed: Vec<Departed> = memberships
            .iter()
            .map(|(room, conn)| self.local_remove(conn, room))
            .collect();
        if self.reconciling() {
            // Announced once the outage is reconciled, against counts every node re-asserted.
            self.requeue(departed);
            return Ok(Vec::new());
        }
        let (out, failed) = self.leave_now(memberships, ts_ms).await;
        self.unindex_identities(&out);
        let failed = matching(&mut departed, &failed);
        if !failed.is_empty() && out.is_empty() {
            self.requeue(failed);
            return Err(StoreError::Unavailable(
                "leave failed; it is retried by the reaper".into(),
            ));
        }
        self.requeue(failed);
        Ok(out)
    }

    async fn update(
        &self,
        room: &Room,
        target: &UpdateTarget,
        patch: &State,
        ts_ms: u64,
    ) -> Result<Vec<Transition>, StoreError> {
        let (mode, who) = match target {
            UpdateTarget::Conn(c) => ("c", c.as_str()),
            UpdateTarget::Identity(i) => ("i", i.as_str()),
        };
        let patch = serde_json::to_string(&record::encode_patch(patch)).unwrap_or_default();
        // The script publishes each transition's room message itself (one command and one
        // round trip less per heartbeat): it gets the message's JSON around the member.
        let (head, tail) = broker::update_message_parts(room, ts_ms);
        let args = [
            mode.into(),
            who.into(),
            patch,
            ts_ms.to_string(),
            self.publish.into(),
            self.keys.channel(room),
            head,
            tail,
        ];
        let reply = self
            .updates
            .update(self.keys.room(room).into_all(), args)
            .await
            .map_err(store_error)?;
        let out = record::published(reply, Some(ts_ms))?;
        let unsent = out.iter().filter(|(_, sent)| !sent).count();
        if unsent > 0 {
            tracing::warn!(room = %room, unsent, "publishing an update failed");
        }
        Ok(out.into_iter().map(|(t, _)| t).collect())
    }

    /// `update` publishes its transitions (`lua/update.lua`).
    fn publishes_updates(&self) -> bool {
        true
    }

    async fn members(&self, room: &Room) -> Result<Vec<Member>, StoreError> {
        let all: HashMap<String, String> = self
            .client
            .hgetall(self.keys.room(room).members)
            .await
            .map_err(store_error)?;
        all.iter()
            .map(|(conn, rec)| record::decode(conn, rec))
            .collect()
    }

    async fn members_seen(&self, room: &Room) -> Result<Vec<(Member, Option<u64>)>, StoreError> {
        self.members_with_seen(room).await
    }

    async fn count(&self, room: &Room) -> Result<u64, StoreError> {
        self.client
            .hlen(self.keys.room(room).identities)
            .await
            .map_err(store_error)
    }

    async fn room_counts(&self) -> Result<Vec<(Room, u64)>, StoreError> {
        let names: Vec<String> = self
            .client
            .smembers(self.keys.rooms())
            .await
            .map_err(store_error)?;
        let rooms: Vec<Room> = names.into_iter().filter_map(room_from_index).collect();
        let mut out = Vec::new();
        for chunk in rooms.chunks(1000) {
            let pipeline = self.client.pipeline();
            for room in chunk {
                let _: Result<(), _> = pipeline.hlen(self.keys.room(room).identities).await;
            }
            let counts: Vec<u64> = pipeline.all().await.map_err(store_error)?;
            out.extend(chunk.iter().cloned().zip(counts).filter(|(_, n)| *n > 0));
        }
        Ok(out)
    }

    async fn room_info(&self, room: &Room) -> Result<RoomInfo, StoreError> {
        self.room_info_of(room).await
    }

    async fn identity_rooms(
        &self,
        identity: &Identity,
    ) -> Result<Vec<(Room, Vec<Member>)>, StoreError> {
        self.rooms_of(identity).await
    }

    async fn members_page(
        &self,
        room: &Room,
        after: Option<&Identity>,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError> {
        self.page_of(room, after, limit).await
    }

    /// One pipeline: the `seen` refresh of this node's live connections, room by room, then
    /// its registry tick (see `liveness.rs`).
    async fn touch_conns(&self, live: &[ConnId], heard: &[ConnId]) -> Result<(), StoreError> {
        self.touch(live, heard).await
    }

    async fn reap(&self, stale_ms: u64, ts_ms: u64) -> Result<Vec<(Room, Transition)>, StoreError> {
        let out = self.reap_dead(stale_ms, ts_ms).await?;
        self.unindex_identities(&out);
        Ok(out)
    }

    /// Both halves must work: commands, and pub/sub (a node that does not listen would miss
    /// the other nodes' events).
    async fn ping(&self) -> Result<(), StoreError> {
        if !self.listening.is_listening() {
            return Err(StoreError::Unavailable(
                "Redis pub/sub is reconnecting".into(),
            ));
        }
        match tokio::time::timeout(PING_TIMEOUT, self.client.ping::<Value>(None)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(store_error(e)),
            Err(_) => Err(StoreError::Unavailable("Redis did not answer PING".into())),
        }
    }

    fn take_lost_state(&self) -> bool {
        self.lost.swap(false, Ordering::Relaxed)
    }

    async fn restore(
        &self,
        items: &[(Room, Member)],
    ) -> Result<Vec<(Room, Transition)>, StoreError> {
        self.restore_all(items).await
    }
}
