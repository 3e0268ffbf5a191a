//! Read-only questions to the backend: members, counts, visitor figures, stats history and
//! readiness.

use super::handle::Engine;
use crate::clock;
use crate::error::EngineError;
use crate::model::{Identity, Member, Room};
use crate::store::{DailyVisitors, RoomInfo, StatsSample};

impl Engine {
    pub async fn members(&self, room: &Room) -> Result<Vec<Member>, EngineError> {
        Ok(self
            .timed(self.shared.backend.presence.members(room))
            .await?)
    }

    pub async fn count(&self, room: &Room) -> Result<u64, EngineError> {
        Ok(self.timed(self.shared.backend.presence.count(room)).await?)
    }

    pub async fn room_info(&self, room: &Room) -> Result<RoomInfo, EngineError> {
        Ok(self
            .timed(self.shared.backend.presence.room_info(room))
            .await?)
    }

    /// Every room of `identity` on every node, with its connections there.
    pub async fn identity_rooms(
        &self,
        identity: &Identity,
    ) -> Result<Vec<(Room, Vec<Member>)>, EngineError> {
        Ok(self
            .timed(self.shared.backend.presence.identity_rooms(identity))
            .await?)
    }

    /// See [`crate::PresenceStore::members_page`].
    pub async fn members_page(
        &self,
        room: &Room,
        after: Option<&Identity>,
        limit: usize,
    ) -> Result<Vec<Member>, EngineError> {
        Ok(self
            .timed(
                self.shared
                    .backend
                    .presence
                    .members_page(room, after, limit),
            )
            .await?)
    }

    /// Every non-empty room and its count, internal rooms included.
    pub async fn room_counts(&self) -> Result<Vec<(Room, u64)>, EngineError> {
        Ok(self
            .timed(self.shared.backend.presence.room_counts())
            .await?)
    }

    /// Today's (UTC) visitor figures: `(date, figures)`.
    pub async fn daily_visitors(&self) -> Result<(String, DailyVisitors), EngineError> {
        let date = clock::utc_date(clock::now_ms());
        let figures = self.timed(self.shared.backend.stats.daily(&date)).await?;
        Ok((date, figures))
    }

    /// Shares this node's history sample with the other nodes; false when the backend
    /// shares none (memory).
    pub async fn record_stats_sample(
        &self,
        sample: &StatsSample,
        keep_ms: u64,
    ) -> Result<bool, EngineError> {
        let node = self.shared.config.node_id.as_str();
        Ok(self
            .timed(
                self.shared
                    .backend
                    .stats
                    .record_sample(node, sample, keep_ms),
            )
            .await?)
    }

    /// Every node's history samples since `since_ms`; `None` when the backend shares none.
    pub async fn stats_samples(
        &self,
        since_ms: u64,
    ) -> Result<Option<Vec<(String, StatsSample)>>, EngineError> {
        Ok(self
            .timed(self.shared.backend.stats.samples(since_ms))
            .await?)
    }

    /// Whether the backend answers.
    pub async fn ping(&self) -> Result<(), EngineError> {
        Ok(self.timed(self.shared.backend.presence.ping()).await?)
    }
}
