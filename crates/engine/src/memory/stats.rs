use std::collections::HashSet;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::model::Identity;
use crate::store::{DailyVisitors, VisitorStats};

/// Exact daily figures; only today's set is kept (yesterday's is dropped at the first visit of
/// a new day), so memory is bounded by one day's distinct visitors.
#[derive(Default)]
pub struct MemoryVisitorStats {
    // A std mutex: held for a hash insert, never across an await.
    today: Mutex<Day>,
}

#[derive(Default)]
struct Day {
    date: String,
    max: u64,
    distinct: HashSet<Identity>,
}

#[async_trait]
impl VisitorStats for MemoryVisitorStats {
    async fn record_visit(
        &self,
        date: &str,
        identity: &Identity,
        concurrent: u64,
    ) -> Result<(), StoreError> {
        let mut day = self.today.lock().unwrap_or_else(|e| e.into_inner());
        if day.date != date {
            *day = Day {
                date: date.to_owned(),
                ..Day::default()
            };
        }
        day.max = day.max.max(concurrent);
        if !day.distinct.contains(identity) {
            day.distinct.insert(identity.clone());
        }
        Ok(())
    }

    async fn daily(&self, date: &str) -> Result<DailyVisitors, StoreError> {
        let day = self.today.lock().unwrap_or_else(|e| e.into_inner());
        if day.date != date {
            return Ok(DailyVisitors::default());
        }
        Ok(DailyVisitors {
            max: day.max,
            total: day.distinct.len() as u64,
        })
    }
}
