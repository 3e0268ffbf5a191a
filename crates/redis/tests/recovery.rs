//! Redis-specific behaviour beyond the shared conformance suite: re-asserting memberships
//! after the store lost them, and what `restore` reports.

use std::sync::OnceLock;
use std::time::Duration;

use activenow_engine::conformance::{
    engine_config, next_presence, next_within, recorder, room, Seen,
};
use activenow_engine::{
    Backend, Engine, EventKind, Identity, Liveness, Member, PresenceEvent, RoomEvent, State,
};
use activenow_redis::{connect, RedisOptions};
use activenow_testkit::RedisServer;

fn redis() -> Option<&'static RedisServer> {
    static REDIS: OnceLock<Option<RedisServer>> = OnceLock::new();
    REDIS.get_or_init(RedisServer::start).as_ref()
}

/// Longest wait for an outage's held-back leaves: reconnection, re-assertion, the settle
/// time after a data loss (2.1 s plus two reaper intervals), with room for a busy machine.
const RECONCILED: Duration = Duration::from_secs(20);

/// The next presence event queued for `conn` (counts skipped), or panics after `limit`.
async fn presence_within(conn: &activenow_engine::Connection, limit: Duration) -> PresenceEvent {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if let Seen::Event(RoomEvent::Presence(e)) = next_within(conn, left).await {
            return e;
        }
    }
}

async fn backend(redis: &RedisServer) -> Backend {
    let options = RedisOptions::new(&redis.url(), "recovery", Duration::from_secs(60));
    connect(&options).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emptied_store_is_filled_again_by_the_nodes() {
    // Its own server: FLUSHALL must not disturb the other tests.
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let engine = Engine::start(engine_config(), backend(&redis).await);
    let room = room("flushed");
    let c = engine.connect(Liveness::Socket);
    c.join(
        room.clone(),
        Identity::new("kept"),
        State::new(),
        recorder(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(next_presence(&c).await.kind, EventKind::Join);

    // What a Redis restart leaves: nothing. The next reaper tick finds the data epoch
    // gone, and the engine puts its memberships back *silently*: its sockets never saw
    // "kept" leave, so they must not see it join again (nor the count drop to 0).
    assert!(redis.command(&["FLUSHALL"]).contains("OK"));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while engine.count(&room).await.unwrap_or(0) != 1 {
        assert!(std::time::Instant::now() < deadline, "not re-asserted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(engine.members(&room).await.unwrap().len(), 1);
    // A barrier: the next event this socket gets is the new member's join.
    let other = engine.connect(Liveness::Socket);
    other
        .join(
            room.clone(),
            Identity::new("new"),
            State::new(),
            recorder(),
            None,
        )
        .await
        .unwrap();
    let next = next_presence(&c).await;
    assert_eq!(
        (next.kind, next.member.identity.as_str(), next.count),
        (EventKind::Join, "new", 2),
        "no second join of the re-asserted member"
    );
    other.disconnect().await;
    c.disconnect().await;
    // Leaves wait until the outage the flush began is reconciled (at least the settle time
    // after a data loss), then go.
    let deadline = std::time::Instant::now() + RECONCILED;
    while engine.count(&room).await.unwrap_or(u64::MAX) != 0 {
        assert!(std::time::Instant::now() < deadline, "leaves not applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leave_while_redis_is_down_is_announced_once_after_it_comes_back_empty() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut options = RedisOptions::new(&redis.url(), "outage", Duration::from_secs(60));
    options.command_timeout = Duration::from_millis(300);
    let mut config = engine_config();
    config.reaper_interval = Duration::from_millis(100);
    // As the server wires them: the store's interval is the engine's.
    options.reaper_interval = config.reaper_interval;
    let engine = Engine::start(config, connect(&options).await.expect("connect"));
    let room = room("outage");
    let watcher = engine.connect(Liveness::Socket);
    let leaver = engine.connect(Liveness::Socket);
    for (c, who) in [(&watcher, "stays"), (&leaver, "goes")] {
        c.join(
            room.clone(),
            Identity::new(who),
            State::new(),
            recorder(),
            None,
        )
        .await
        .unwrap();
    }
    assert_eq!(next_presence(&watcher).await.count, 1);
    assert_eq!(next_presence(&watcher).await.count, 2);

    redis.stop();
    // Its leave cannot reach Redis: it waits, and nothing is announced yet.
    leaver.disconnect().await;
    redis.restart();

    // Back, empty: "stays" is re-asserted silently; then "goes" is announced gone, once,
    // with the true count (after the reconnection and the settle time).
    let left = presence_within(&watcher, RECONCILED).await;
    assert_eq!(
        (
            left.kind,
            left.member.identity.as_str(),
            left.identity_changed,
            left.count
        ),
        (EventKind::Leave, "goes", true, 1)
    );
    let other = engine.connect(Liveness::Socket);
    other
        .join(
            room.clone(),
            Identity::new("new"),
            State::new(),
            recorder(),
            None,
        )
        .await
        .unwrap();
    let next = next_presence(&watcher).await;
    assert_eq!(
        (next.kind, next.member.identity.as_str(), next.count),
        (EventKind::Join, "new", 2),
        "nothing between the leave and the barrier: no second leave, no re-join"
    );
    assert_eq!(engine.count(&room).await.unwrap(), 2);
    other.disconnect().await;
    watcher.disconnect().await;
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_adds_what_is_missing_and_otherwise_refreshes_the_count() {
    let Some(redis) = redis() else { return };
    let backend = backend(redis).await;
    let store = backend.presence.clone();
    let room = room("restore");
    let member = |conn: &str, who: &str| Member {
        conn: activenow_engine::ConnId::new(conn),
        identity: Identity::new(who),
        state: State::new(),
        joined_at_ms: 1,
        updated_at_ms: 1,
        epoch: 1,
    };
    let items = vec![
        (room.clone(), member("r.1", "ann")),
        (room.clone(), member("r.2", "ann")),
    ];
    let added = store.restore(&items).await.unwrap();
    let kinds: Vec<_> = added
        .iter()
        .map(|(_, t)| (t.kind, t.identity_changed))
        .collect();
    assert_eq!(
        kinds,
        [(EventKind::Join, true), (EventKind::Join, false)],
        "the second tab of ann is not a new identity"
    );
    // All present: no join, one no-op update carrying the count under a newer version.
    let again = store.restore(&items).await.unwrap();
    assert_eq!(again.len(), 1);
    let (_, t) = &again[0];
    assert_eq!(
        (t.kind, t.identity_changed, t.count),
        (EventKind::Update, false, 1)
    );
    assert!(t.version > added[1].1.version);
    assert_eq!(store.count(&room).await.unwrap(), 1);
    let left = store
        .leave(
            &[
                (room.clone(), activenow_engine::ConnId::new("r.1")),
                (room.clone(), activenow_engine::ConnId::new("r.2")),
                (room.clone(), activenow_engine::ConnId::new("r.2")),
            ],
            5,
        )
        .await
        .unwrap();
    assert_eq!(left.len(), 2, "leaving twice yields one transition");
    assert!(left[1].1.identity_changed);
    assert!(!store
        .room_counts()
        .await
        .unwrap()
        .iter()
        .any(|(r, _)| r == &room));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_registered_just_before_an_empty_restart_is_waited_for() {
    // Node A ticks once, then B starts: A's last tick before the outage never saw B (B
    // registered less than one tick before it). Redis restarts empty, which forgets B too.
    // A must not announce its held-back leave before B has re-asserted: the leave's count
    // would miss B's member (a dip), and B's sockets might not listen yet.
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut config = engine_config();
    // The reapers are driven by hand below (the spawned one ticks once, at start).
    config.reaper_interval = Duration::from_secs(3600);
    let node = |name: &str| {
        let mut options = RedisOptions::new(&redis.url(), name, Duration::from_secs(60));
        options.command_timeout = Duration::from_millis(300);
        options.reaper_interval = Duration::from_millis(100);
        let mut config = config.clone();
        config.node_id = name.to_owned();
        async move { Engine::start(config, connect(&options).await.expect("connect")) }
    };
    let a = node("a").await;
    a.reap().await;
    let b = node("b").await;
    b.reap().await;
    let room = room("newcomer");
    let watcher = a.connect(Liveness::Socket);
    let leaver = a.connect(Liveness::Socket);
    let on_b = b.connect(Liveness::Socket);
    for (c, who) in [(&watcher, "stays"), (&leaver, "goes"), (&on_b, "on-b")] {
        c.join(
            room.clone(),
            Identity::new(who),
            State::new(),
            recorder(),
            None,
        )
        .await
        .unwrap();
    }
    for n in 1..=3 {
        assert_eq!(next_presence(&watcher).await.count, n);
    }

    redis.stop();
    leaver.disconnect().await;
    // A's tick fails: its outage begins, noting the peers of its last tick (none).
    a.reap().await;
    redis.restart();

    // Only A ticks until it has re-asserted, listens again and could mark itself ready: it
    // must hold the leave back, though it knows of no other node.
    let deadline = std::time::Instant::now() + RECONCILED;
    while a.ping().await.is_err() || a.count(&room).await.unwrap_or(0) != 1 {
        assert!(std::time::Instant::now() < deadline, "A not back");
        a.reap().await;
    }
    for _ in 0..4 {
        a.reap().await;
    }
    // Now both nodes tick, as their reapers would.
    let reapers = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            b.reap().await;
            a.reap().await;
        }
    });
    let left = presence_within(&watcher, RECONCILED).await;
    reapers.abort();
    assert_eq!(
        (
            left.kind,
            left.member.identity.as_str(),
            left.identity_changed,
            left.count
        ),
        (EventKind::Leave, "goes", true, 2),
        "the leave waits for B's member to be re-asserted"
    );
}
