//! Re-asserting a node's memberships after the store may have lost them.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use activenow_engine::store::Transition;
use activenow_engine::{Member, Room, StoreError};

use super::state::{RedisPresence, CONNS_PER_CALL};
use crate::error::{protocol, store_error};
use crate::record;
use crate::scripts::{eval_all, Call};

impl RedisPresence {
    pub(super) async fn restore_all(
        &self,
        items: &[(Room, Member)],
    ) -> Result<Vec<(Room, Transition)>, StoreError> {
        if let Err(e) = self.check_epoch().await {
            self.lost.store(true, Ordering::Relaxed);
            return Err(e);
        }
        let mut by_room: Vec<(Room, Vec<&Member>)> = Vec::new();
        let mut at: HashMap<&Room, usize> = HashMap::new();
        for (room, member) in items {
            let i = *at.entry(room).or_insert_with(|| {
                by_room.push((room.clone(), Vec::new()));
                by_room.len() - 1
            });
            by_room[i].1.push(member);
        }
        let names: Vec<String> = by_room.iter().map(|(r, _)| r.as_str().to_owned()).collect();
        if let Err(e) = self.index(names.clone()).await {
            self.lost.store(true, Ordering::Relaxed);
            return Err(e);
        }
        let mut calls = Vec::new();
        let mut call_rooms = Vec::new();
        for (room, members) in &by_room {
            for chunk in members.chunks(CONNS_PER_CALL) {
                let mut args = Vec::with_capacity(chunk.len() * 3);
                for m in chunk {
                    args.push(m.conn.as_str().to_owned());
                    args.push(m.identity.as_str().to_owned());
                    args.push(record::encode(m));
                }
                calls.push(Call {
                    script: &self.scripts.restore,
                    keys: self.keys.room(room).all(),
                    args,
                });
                call_rooms.push((room.clone(), chunk.to_vec()));
            }
        }
        let results = eval_all(&self.client, &self.scripts, calls).await;
        let mut out = Vec::new();
        let mut restored: Vec<(Room, &Member)> = Vec::new();
        let mut first_error = None;
        for (result, (room, members)) in results.into_iter().zip(call_rooms) {
            let parsed = result.map_err(store_error).and_then(|v| {
                let mut f = v.into_array();
                if f.len() != 2 {
                    return Err(protocol("restore"));
                }
                record::transitions(f.swap_remove(1), None)
            });
            match parsed {
                Ok(ts) => {
                    out.extend(ts.into_iter().map(|t| (room.clone(), t)));
                    restored.extend(members.into_iter().map(|m| (room.clone(), m)));
                }
                Err(e) => {
                    tracing::warn!(error = %e, room = %room, "restoring memberships failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        // Again after the scripts, as for a join into an empty room.
        if let Err(e) = self.index(names).await {
            first_error.get_or_insert(e);
        }
        for (room, member) in &restored {
            self.cancel_pending(room, &member.conn);
            self.local_add(member, room);
        }
        if self.silent() {
            // Redis lost its data; these memberships were announced before it did, and
            // their watchers never saw them go.
            out.clear();
        }
        match first_error {
            Some(e) => {
                // Try again on the next reaper tick.
                self.lost.store(true, Ordering::Relaxed);
                if out.is_empty() {
                    Err(e)
                } else {
                    Ok(out)
                }
            }
            None => Ok(out),
        }
    }
}
