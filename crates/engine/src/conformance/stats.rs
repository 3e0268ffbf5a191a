//! Conformance checks for [`VisitorStats`](crate::store::VisitorStats): the daily peak is a
//! maximum, the distinct count counts identities once, the engine records the visitors room's
//! arrivals, and a backend shares its history exactly when it is shared across nodes.

use super::support::{engine_config, join, recorder, room, unique};
use crate::clock;
use crate::engine::{Engine, Liveness};
use crate::model::{Identity, Room, State};
use crate::store::{Backend, DailyVisitors, StatsSample};

/// The store's contract, on a day no other check writes (a unique date string).
pub async fn visitor_stats_follow_their_contract(backend: Backend) {
    let stats = backend.stats.clone();
    let day = unique("day");
    let who = |n: u32| Identity::new(&format!("{day}-v{n}"));
    assert_eq!(stats.daily(&day).await.unwrap(), DailyVisitors::default());
    stats.record_visit(&day, &who(1), 1).await.unwrap();
    stats.record_visit(&day, &who(2), 2).await.unwrap();
    // The same visitor again, and a later arrival at a lower concurrency: neither raises the
    // distinct count nor lowers the peak.
    stats.record_visit(&day, &who(1), 2).await.unwrap();
    stats.record_visit(&day, &who(3), 1).await.unwrap();
    assert_eq!(
        stats.daily(&day).await.unwrap(),
        DailyVisitors { max: 2, total: 3 }
    );
    assert_eq!(
        stats.daily(&unique("other-day")).await.unwrap(),
        DailyVisitors::default(),
        "days are counted apart"
    );
}

/// Joins of the global visitors room are today's visits; other rooms are not; tabs of one
/// visitor count once.
pub async fn visits_through_the_engine_are_counted(backend: Backend) {
    let engine = Engine::start(engine_config(), backend);
    let before = clock::utc_date(clock::now_ms());
    let (_, start) = engine.daily_visitors().await.unwrap();
    let prefix = unique("visitor");
    let mut conns = Vec::new();
    for who in ["a", "a", "b"] {
        let c = engine.connect(Liveness::Socket);
        let id = Identity::new(&format!("{prefix}-{who}"));
        c.join(Room::visitors(), id, State::new(), recorder(), None)
            .await
            .unwrap();
        conns.push(c);
    }
    let elsewhere = engine.connect(Liveness::Socket);
    join(&elsewhere, &room("not-visitors"), &format!("{prefix}-c"))
        .await
        .unwrap();
    let (date, figures) = engine.daily_visitors().await.unwrap();
    // A check that straddles midnight (UTC) reads a new day: nothing to compare then.
    if date == before {
        assert_eq!(figures.total, start.total + 2, "distinct visitors");
        assert!(figures.max >= 2, "peak of concurrent visitors: {figures:?}");
    }
    for c in conns {
        c.disconnect().await;
    }
    elsewhere.disconnect().await;
    engine.shutdown().await;
}

/// The operator's history: shared (and trimmed to the kept window) exactly when the backend
/// is shared across nodes, absent otherwise.
pub async fn stats_history_is_shared_by_shared_backends(backend: Backend) {
    let shared = backend.shared_across_nodes();
    let engine = Engine::start(engine_config(), backend);
    let sample = |slot_ms: u64, visitors: u64| StatsSample {
        slot_ms,
        visitors,
        members: 2,
        rooms: 1,
        connections: 3,
    };
    let old = sample(1_000_000, 5);
    let new = sample(1_060_000, 6);
    assert_eq!(
        engine.record_stats_sample(&old, 30_000).await.unwrap(),
        shared
    );
    assert_eq!(
        engine.record_stats_sample(&new, 30_000).await.unwrap(),
        shared
    );
    let samples = engine.stats_samples(0).await.unwrap();
    if !shared {
        assert_eq!(samples, None);
        engine.shutdown().await;
        return;
    }
    let node = engine.config().node_id.clone();
    let mine: Vec<StatsSample> = samples
        .expect("a shared backend shares its history")
        .into_iter()
        .filter(|(n, _)| *n == node)
        .map(|(_, s)| s)
        .collect();
    assert_eq!(mine, vec![new], "the old slot is trimmed, the new one kept");
    engine.shutdown().await;
}
