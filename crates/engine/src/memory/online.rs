//! Online-status records in memory: one ordered map (player-id order is the list order) behind
//! a std mutex held for a few map operations, never across an await.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::error::StoreError;
use crate::model::Identity;
use crate::records::{Login, OnlineRecord, OnlineRecords};

#[derive(Default)]
pub struct MemoryOnlineRecords {
    records: Mutex<Records>,
    /// Offline records kept at most (0 = no limit).
    offline_cap: AtomicU64,
}

#[derive(Default)]
struct Records {
    map: BTreeMap<Identity, Entry>,
    /// Entries of `map` that are online, kept with every status change (the login cap).
    online: u64,
    /// The offline entries by removal time: purge and the offline cap take the oldest.
    offline: BTreeSet<(u64, Identity)>,
}

impl Records {
    /// Removes the offline entry `(until, player)` from the map and the index.
    fn drop_offline(&mut self, until: u64, player: &Identity) {
        self.offline.remove(&(until, player.clone()));
        if self
            .map
            .get(player)
            .is_some_and(|e| e.retain_until_ms == Some(until))
        {
            self.map.remove(player);
        }
    }

    /// Removes offline entries while `pred` holds for the oldest one.
    fn drop_oldest_while(&mut self, pred: impl Fn(&Records, u64) -> bool) {
        while let Some((until, player)) = self.offline.first().cloned() {
            if !pred(self, until) {
                break;
            }
            self.drop_offline(until, &player);
        }
    }
}

impl std::ops::Deref for Records {
    type Target = BTreeMap<Identity, Entry>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl std::ops::DerefMut for Records {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.map
    }
}

struct Entry {
    record: OnlineRecord,
    /// Offline records are dropped at this wall-clock time.
    retain_until_ms: Option<u64>,
}

impl Entry {
    fn visible(&self, now_ms: u64) -> bool {
        self.retain_until_ms.is_none_or(|until| now_ms < until)
    }
}

impl MemoryOnlineRecords {
    fn map(&self) -> MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn go_offline(
        &self,
        player: &Identity,
        before: Option<u64>,
        now_ms: u64,
        retain_ms: u64,
    ) -> Option<OnlineRecord> {
        let mut map = self.map();
        let entry = map.get_mut(player)?;
        if !entry.record.online || before.is_some_and(|b| entry.record.last_heartbeat_ms > b) {
            return None;
        }
        let until = now_ms.saturating_add(retain_ms);
        entry.record.online = false;
        entry.record.logout_ms = Some(now_ms);
        entry.retain_until_ms = Some(until);
        let record = entry.record.clone();
        map.online -= 1;
        map.offline.insert((until, player.clone()));
        let cap = self.offline_cap.load(Ordering::Relaxed);
        if cap > 0 {
            map.drop_oldest_while(|m, _| m.offline.len() as u64 > cap);
        }
        Some(record)
    }
}

#[async_trait]
impl OnlineRecords for MemoryOnlineRecords {
    async fn login(&self, login: Login<'_>) -> Result<Option<(OnlineRecord, bool)>, StoreError> {
        let mut map = self.map();
        if let Some(entry) = map.get_mut(login.player) {
            if entry.record.online && login.keep_online {
                return Ok(Some((entry.record.clone(), true)));
            }
        }
        let was_online = map.get(login.player).is_some_and(|e| e.record.online);
        let retained = map.get(login.player).and_then(|e| e.retain_until_ms);
        if !was_online {
            if login.max_online > 0 && map.online >= login.max_online {
                return Ok(None);
            }
            map.online += 1;
        }
        if let Some(until) = retained {
            map.offline.remove(&(until, login.player.clone()));
        }
        let record = OnlineRecord {
            player: login.player.clone(),
            login_ms: login.now_ms,
            last_heartbeat_ms: login.now_ms,
            ip: login.ip.to_owned(),
            name: login.name.map(str::to_owned),
            online: true,
            logout_ms: None,
        };
        map.insert(
            login.player.clone(),
            Entry {
                record: record.clone(),
                retain_until_ms: None,
            },
        );
        Ok(Some((record, was_online)))
    }

    async fn heartbeat(
        &self,
        player: &Identity,
        now_ms: u64,
    ) -> Result<Option<OnlineRecord>, StoreError> {
        let mut map = self.map();
        Ok(map.get_mut(player).filter(|e| e.record.online).map(|e| {
            e.record.last_heartbeat_ms = e.record.last_heartbeat_ms.max(now_ms);
            e.record.clone()
        }))
    }

    async fn touch(&self, players: &[Identity], now_ms: u64) -> Result<(), StoreError> {
        let mut map = self.map();
        for player in players {
            if let Some(e) = map.get_mut(player).filter(|e| e.record.online) {
                e.record.last_heartbeat_ms = e.record.last_heartbeat_ms.max(now_ms);
            }
        }
        Ok(())
    }

    async fn logout(
        &self,
        player: &Identity,
        now_ms: u64,
        retain_ms: u64,
    ) -> Result<Option<OnlineRecord>, StoreError> {
        Ok(self.go_offline(player, None, now_ms, retain_ms))
    }

    async fn expire(
        &self,
        player: &Identity,
        heartbeat_before_ms: u64,
        now_ms: u64,
        retain_ms: u64,
    ) -> Result<Option<OnlineRecord>, StoreError> {
        Ok(self.go_offline(player, Some(heartbeat_before_ms), now_ms, retain_ms))
    }

    async fn get(
        &self,
        player: &Identity,
        now_ms: u64,
    ) -> Result<Option<OnlineRecord>, StoreError> {
        let map = self.map();
        Ok(map
            .get(player)
            .filter(|e| e.visible(now_ms))
            .map(|e| e.record.clone()))
    }

    async fn list_online(
        &self,
        after: Option<&Identity>,
        limit: usize,
    ) -> Result<Vec<OnlineRecord>, StoreError> {
        use std::ops::Bound;
        let map = self.map();
        let start = match after {
            Some(a) => Bound::Excluded(a.clone()),
            None => Bound::Unbounded,
        };
        Ok(map
            .range((start, Bound::Unbounded))
            .filter(|(_, e)| e.record.online)
            .take(limit)
            .map(|(_, e)| e.record.clone())
            .collect())
    }

    fn set_offline_cap(&self, max: u64) {
        self.offline_cap.store(max, Ordering::Relaxed);
    }

    async fn purge(&self, now_ms: u64) -> Result<(), StoreError> {
        // Online entries are never in the offline index: the online count does not change.
        self.map().drop_oldest_while(|_, until| until <= now_ms);
        Ok(())
    }
}
