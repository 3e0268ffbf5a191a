//! [`RedisVisitorStats`]: today's peak (an atomic max in Lua) and distinct visitors (a
//! HyperLogLog: about 0.8 % standard error, 12 KiB per day however many visitors), and the
//! operator's history: one sorted set of every node's samples, scored by slot, trimmed to the
//! kept window on every write (nodes x samples entries, about 60 bytes each).

use std::sync::Arc;

use activenow_engine::store::{DailyVisitors, StatsSample, VisitorStats};
use activenow_engine::{Identity, StoreError};
use async_trait::async_trait;
use fred::clients::Client;
use fred::interfaces::{HyperloglogInterface, KeysInterface, SortedSetsInterface};
use fred::types::sorted_sets::{ZRange, ZRangeBound, ZRangeKind};

use crate::error::store_error;
use crate::keys::Keys;
use crate::scripts::{eval, Call, Scripts};

/// Daily keys expire after this many seconds (yesterday stays readable for a while).
const DAY_KEY_TTL_SECS: u64 = 3 * 86_400;

pub struct RedisVisitorStats {
    client: Client,
    keys: Keys,
    scripts: Arc<Scripts>,
}

impl RedisVisitorStats {
    pub(crate) fn new(client: Client, keys: Keys, scripts: Arc<Scripts>) -> RedisVisitorStats {
        RedisVisitorStats {
            client,
            keys,
            scripts,
        }
    }
}

#[async_trait]
impl VisitorStats for RedisVisitorStats {
    async fn record_visit(
        &self,
        date: &str,
        identity: &Identity,
        concurrent: u64,
    ) -> Result<(), StoreError> {
        eval(
            &self.client,
            Call {
                script: &self.scripts.visit,
                keys: vec![self.keys.day_peak(date), self.keys.day_visitors(date)],
                args: vec![
                    identity.as_str().to_owned(),
                    concurrent.to_string(),
                    DAY_KEY_TTL_SECS.to_string(),
                ],
            },
        )
        .await
        .map(|_| ())
        .map_err(store_error)
    }

    async fn daily(&self, date: &str) -> Result<DailyVisitors, StoreError> {
        let max: Option<u64> = self
            .client
            .get(self.keys.day_peak(date))
            .await
            .map_err(store_error)?;
        let total: u64 = self
            .client
            .pfcount(self.keys.day_visitors(date))
            .await
            .map_err(store_error)?;
        Ok(DailyVisitors {
            max: max.unwrap_or(0),
            total,
        })
    }

    async fn record_sample(
        &self,
        node: &str,
        s: &StatsSample,
        keep_ms: u64,
    ) -> Result<bool, StoreError> {
        let key = self.keys.stats_history();
        let entry = format!(
            "{}|{}|{}|{}|{}|{}",
            s.slot_ms, s.visitors, s.members, s.rooms, s.connections, node
        );
        // Slots before this one are forgotten. A score bound, not a string: fred reads
        // `"(123"` as a lexical bound and drops the command while queueing it, which the
        // conformance suite caught (the history was never trimmed).
        let oldest = ZRange {
            kind: ZRangeKind::Exclusive,
            range: ZRangeBound::Score(s.slot_ms.saturating_sub(keep_ms) as f64),
        };
        let pipeline = self.client.pipeline();
        // Queueing fails only on arguments fred cannot encode: surface it, never skip.
        let () = pipeline
            .zadd(
                key.as_str(),
                None,
                None,
                false,
                false,
                (s.slot_ms as f64, entry),
            )
            .await
            .map_err(store_error)?;
        let () = pipeline
            .zremrangebyscore(key.as_str(), "-inf", oldest)
            .await
            .map_err(store_error)?;
        // A cluster whose nodes all stopped leaves nothing behind for long.
        let ttl = i64::try_from(keep_ms.saturating_mul(2)).unwrap_or(i64::MAX);
        let () = pipeline
            .pexpire(key.as_str(), ttl, None)
            .await
            .map_err(store_error)?;
        for r in pipeline.try_all::<fred::types::Value>().await {
            r.map_err(store_error)?;
        }
        Ok(true)
    }

    async fn samples(
        &self,
        since_ms: u64,
    ) -> Result<Option<Vec<(String, StatsSample)>>, StoreError> {
        let since = i64::try_from(since_ms).unwrap_or(i64::MAX);
        let entries: Vec<String> = self
            .client
            .zrangebyscore(self.keys.stats_history(), since, "+inf", false, None)
            .await
            .map_err(store_error)?;
        Ok(Some(
            entries.iter().filter_map(|e| parse_sample(e)).collect(),
        ))
    }
}

/// `slot|visitors|members|rooms|connections|node`; `None` for an entry in another format
/// (written by a different version), which is skipped.
fn parse_sample(entry: &str) -> Option<(String, StatsSample)> {
    let mut parts = entry.splitn(6, '|');
    let mut n = || parts.next()?.parse::<u64>().ok();
    let sample = StatsSample {
        slot_ms: n()?,
        visitors: n()?,
        members: n()?,
        rooms: n()?,
        connections: n()?,
    };
    Some((parts.next()?.to_owned(), sample))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_round_trip_and_foreign_entries_are_skipped() {
        let (node, s) = parse_sample("60000|3|5|2|7|node|with|bars").unwrap();
        assert_eq!(node, "node|with|bars");
        assert_eq!(
            (s.slot_ms, s.visitors, s.members, s.rooms, s.connections),
            (60000, 3, 5, 2, 7)
        );
        assert!(parse_sample("garbage").is_none());
        assert!(parse_sample("1|2|3").is_none());
    }
}
