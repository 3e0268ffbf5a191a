//! The backend conformance suite: every backend must pass these, through the engine.
//!
//! Each check is an `async fn(Backend)`; [`conformance_suite!`](crate::conformance_suite)
//! turns them into `#[tokio::test]`s for a backend factory. The memory backend runs them in
//! this crate's tests; the Redis backend runs the same ones against a real `redis-server`.
//! TTL is tested with real (short) time here so that a remote store works too; the memory
//! backend's TTL is also tested on tokio's paused clock in `engine_tests`.

use std::sync::Arc;
use std::time::Duration;

mod metadata;
pub use metadata::*;

use bytes::Bytes;

use crate::model::{EventKind, Identity, PresenceEvent, Publication, Room, RoomEvent, State};
use crate::outbox::Outgoing;
use crate::{Backend, Connection, Engine, EngineConfig, EngineError, Liveness, Renderer};

/// Renders events as the engine's own serde JSON, so tests can read them back.
pub struct Recorder;

impl Renderer for Recorder {
    fn render(&self, _room: &Room, event: &RoomEvent) -> Option<Bytes> {
        Some(Bytes::from(serde_json::to_vec(event).ok()?))
    }
    fn render_count(&self, _room: &Room, count: u64) -> Option<Bytes> {
        Some(Bytes::from(format!("{{\"count\":{count}}}")))
    }
}

/// What a test connection received.
#[derive(Debug)]
pub enum Seen {
    Event(RoomEvent),
    Count(u64),
    Closed,
}

pub fn recorder() -> Arc<dyn Renderer> {
    Arc::new(Recorder)
}

pub fn engine_config() -> EngineConfig {
    EngineConfig {
        node_id: format!("t{:x}", std::process::id()),
        presence_ttl: Duration::from_secs(30),
        reaper_interval: Duration::from_millis(100),
        reaper_lookback: Duration::from_secs(60),
        send_queue_capacity: 4096,
        ..EngineConfig::default()
    }
}

/// A fresh room name, so suites sharing one store do not see each other.
pub fn room(tag: &str) -> Room {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Room::parse(&format!("{tag}-{}-{n}", std::process::id())).expect("valid room")
}

/// The next thing queued for `conn`, or panics after 5 s.
pub async fn next(conn: &Connection) -> Seen {
    next_within(conn, Duration::from_secs(5)).await
}

/// The next thing queued for `conn`, or panics after `limit`.
pub async fn next_within(conn: &Connection, limit: Duration) -> Seen {
    let out = tokio::time::timeout(limit, conn.outbox().next())
        .await
        .unwrap_or_else(|_| panic!("nothing arrived within {limit:?}"));
    match out {
        Outgoing::Frame(b) => match serde_json::from_slice::<RoomEvent>(&b) {
            Ok(e) => Seen::Event(e),
            Err(_) => {
                let v: serde_json::Value = serde_json::from_slice(&b).expect("json");
                Seen::Count(v["count"].as_u64().expect("count"))
            }
        },
        Outgoing::Close(_) => Seen::Closed,
    }
}

/// The next presence event queued for `conn`, skipping counts.
pub async fn next_presence(conn: &Connection) -> PresenceEvent {
    loop {
        if let Seen::Event(RoomEvent::Presence(e)) = next(conn).await {
            return e;
        }
    }
}

/// Waits until a count equal to `want` arrives.
pub async fn await_count(conn: &Connection, want: u64) {
    loop {
        if let Seen::Count(n) = next(conn).await {
            if n == want {
                return;
            }
        }
    }
}

async fn join(conn: &Connection, room: &Room, who: &str) -> Result<PresenceEvent, EngineError> {
    conn.join(
        room.clone(),
        Identity::new(who),
        State::new(),
        recorder(),
        None,
    )
    .await
}

pub async fn identity_joins_on_first_connection_and_leaves_on_last(backend: Backend) {
    let engine = Engine::start(engine_config(), backend);
    let room = room("dedup");
    let tab1 = engine.connect(Liveness::Socket);
    let tab2 = engine.connect(Liveness::Socket);
    let other = engine.connect(Liveness::Socket);

    let t = join(&tab1, &room, "alice").await.unwrap();
    assert_eq!(
        (t.kind, t.identity_changed, t.count),
        (EventKind::Join, true, 1)
    );
    let t = join(&tab2, &room, "alice").await.unwrap();
    assert_eq!(
        (t.kind, t.identity_changed, t.count),
        (EventKind::Join, false, 1)
    );
    let t = join(&other, &room, "bob").await.unwrap();
    assert!(t.identity_changed);
    assert_eq!(t.count, 2);
    assert_eq!(engine.count(&room).await.unwrap(), 2);
    assert_eq!(engine.members(&room).await.unwrap().len(), 3);

    tab1.disconnect().await;
    assert_eq!(engine.count(&room).await.unwrap(), 2);
    let e = loop {
        let e = next_presence(&other).await;
        if e.kind == EventKind::Leave {
            break e;
        }
    };
    assert!(!e.identity_changed, "a tab closing is not alice leaving");
    tab2.disconnect().await;
    let e = loop {
        let e = next_presence(&other).await;
        if e.kind == EventKind::Leave {
            break e;
        }
    };
    assert!(e.identity_changed);
    assert_eq!(e.member.identity, Identity::new("alice"));
    assert_eq!(e.count, 1);
    other.disconnect().await;
    assert_eq!(engine.count(&room).await.unwrap(), 0);
    assert!(!engine
        .room_counts()
        .await
        .unwrap()
        .iter()
        .any(|(r, _)| r == &room));
    engine.shutdown().await;
}

pub async fn events_reach_subscribers_with_counts(backend: Backend) {
    let engine = Engine::start(engine_config(), backend);
    let room = room("events");
    let watcher = engine.connect(Liveness::Socket);
    join(&watcher, &room, "w").await.unwrap();
    let own = next_presence(&watcher).await;
    assert_eq!(own.member.identity, Identity::new("w"));

    let c = engine.connect(Liveness::Socket);
    join(&c, &room, "u1").await.unwrap();
    let e = next_presence(&watcher).await;
    assert_eq!(
        (e.kind, e.member.identity.as_str(), e.count),
        (EventKind::Join, "u1", 2)
    );
    await_count(&watcher, 2).await;

    let mut patch = State::new();
    patch.insert("position".into(), 3.into());
    let updated = c.update(&room, &patch).await.unwrap();
    assert_eq!(updated.member.state["position"], 3);
    let e = next_presence(&watcher).await;
    assert_eq!(e.kind, EventKind::Update);
    assert_eq!(e.member.state["position"], 3);

    engine
        .publish(
            &room,
            Publication {
                event: "ping".into(),
                data: serde_json::json!({"x": 1}),
                from: None,
                ts_ms: 1,
            },
            Some(c.id().clone()),
        )
        .await
        .unwrap();
    loop {
        if let Seen::Event(RoomEvent::Publication(p)) = next(&watcher).await {
            assert_eq!(p.data["x"], 1);
            break;
        }
    }
    // The excluded publisher got its own join and the update, but never the publication.
    c.leave(&room).await.unwrap();
    let e = next_presence(&watcher).await;
    assert_eq!((e.kind, e.count), (EventKind::Leave, 1));
    while let Ok(out) = tokio::time::timeout(Duration::from_millis(0), c.outbox().next()).await {
        if let Outgoing::Frame(b) = out {
            if let Ok(RoomEvent::Publication(_)) = serde_json::from_slice::<RoomEvent>(&b) {
                panic!("the publisher received its own publication");
            }
        }
    }
    watcher.disconnect().await;
    c.disconnect().await;
    engine.shutdown().await;
}

pub async fn http_style_update_needs_presence(backend: Backend) {
    let engine = Engine::start(engine_config(), backend);
    let room = room("update");
    let mut patch = State::new();
    patch.insert("displayName".into(), "A".into());
    let err = engine
        .update_identity(&room, &Identity::new("ghost"), &patch)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::NotMember));
    let t1 = engine.connect(Liveness::Socket);
    let t2 = engine.connect(Liveness::Socket);
    join(&t1, &room, "a").await.unwrap();
    join(&t2, &room, "a").await.unwrap();
    let events = engine
        .update_identity(&room, &Identity::new("a"), &patch)
        .await
        .unwrap();
    assert_eq!(events.len(), 2, "both tabs of the identity are updated");
    assert_eq!(events.iter().filter(|e| e.identity_changed).count(), 1);
    for m in engine.members(&room).await.unwrap() {
        assert_eq!(m.state["displayName"], "A");
    }
    t1.disconnect().await;
    t2.disconnect().await;
    engine.shutdown().await;
}

pub async fn room_limit_counts_identities(backend: Backend) {
    let engine = Engine::start(engine_config(), backend);
    let room = room("limit");
    let mut conns = Vec::new();
    for who in ["a", "b"] {
        let c = engine.connect(Liveness::Socket);
        c.join(
            room.clone(),
            Identity::new(who),
            State::new(),
            recorder(),
            Some(2),
        )
        .await
        .unwrap();
        conns.push(c);
    }
    let third = engine.connect(Liveness::Socket);
    let err = third
        .join(
            room.clone(),
            Identity::new("c"),
            State::new(),
            recorder(),
            Some(2),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::RoomFull { limit: 2 }));
    // Another tab of a present identity is not a new member.
    third
        .join(
            room.clone(),
            Identity::new("a"),
            State::new(),
            recorder(),
            Some(2),
        )
        .await
        .unwrap();
    assert_eq!(engine.count(&room).await.unwrap(), 2);
    third.disconnect().await;
    for c in conns {
        c.disconnect().await;
    }
    engine.shutdown().await;
}

pub async fn rekey_moves_the_identity(backend: Backend) {
    let engine = Engine::start(engine_config(), backend);
    let room = room("rekey");
    let watcher = engine.connect(Liveness::Socket);
    join(&watcher, &room, "w").await.unwrap();
    let c = engine.connect(Liveness::Socket);
    join(&c, &room, "old").await.unwrap();
    c.rekey(Identity::new("new")).await.unwrap();
    let members = engine.members(&room).await.unwrap();
    let ids: Vec<&str> = members.iter().map(|m| m.identity.as_str()).collect();
    assert!(ids.contains(&"new") && !ids.contains(&"old"), "{ids:?}");
    assert_eq!(engine.count(&room).await.unwrap(), 2);
    let mut kinds = Vec::new();
    while kinds.len() < 4 {
        let e = next_presence(&watcher).await;
        kinds.push((e.kind, e.member.identity.as_str().to_owned()));
    }
    assert_eq!(
        kinds[1..],
        [
            (EventKind::Join, "old".to_owned()),
            (EventKind::Leave, "old".to_owned()),
            (EventKind::Join, "new".to_owned())
        ]
    );
    c.disconnect().await;
    watcher.disconnect().await;
    engine.shutdown().await;
}

pub async fn silent_connection_expires_and_heartbeat_rejoins(backend: Backend) {
    let mut config = engine_config();
    config.presence_ttl = Duration::from_millis(300);
    config.reaper_interval = Duration::from_millis(50);
    let engine = Engine::start(config, backend);
    let room = room("ttl");
    let watcher = engine.connect(Liveness::Socket);
    join(&watcher, &room, "w").await.unwrap();
    let silent = engine.connect(Liveness::Heartbeat {
        ttl: engine.config().presence_ttl,
    });
    join(&silent, &room, "s").await.unwrap();
    let e = loop {
        let e = next_presence(&watcher).await;
        if e.kind == EventKind::Leave {
            break e;
        }
    };
    assert_eq!(e.member.identity, Identity::new("s"));
    assert!(e.identity_changed);
    assert!(silent.is_expired());
    assert_eq!(engine.count(&room).await.unwrap(), 1);
    silent.heartbeat().await.unwrap();
    assert!(!silent.is_expired());
    let e = loop {
        let e = next_presence(&watcher).await;
        if e.kind == EventKind::Join {
            break e;
        }
    };
    assert_eq!(e.member.identity, Identity::new("s"));
    assert_eq!(engine.count(&room).await.unwrap(), 2);
    silent.disconnect().await;
    watcher.disconnect().await;
    engine.shutdown().await;
}

/// 1,000 connections join and leave at once across 10 rooms: every count is exact and every
/// remaining subscriber's last count equals its room's count.
pub async fn concurrent_joins_and_leaves_end_exact(backend: Backend) {
    let engine = Engine::start(engine_config(), backend);
    let rooms: Vec<Room> = (0..10).map(|i| room(&format!("burst{i}"))).collect();
    let mut tasks = Vec::new();
    for i in 0..1000usize {
        let engine = engine.clone();
        let room = rooms[i % 10].clone();
        tasks.push(tokio::spawn(async move {
            let c = engine.connect(Liveness::Socket);
            // Identities repeat (500 distinct): tabs must dedup under concurrency too.
            let who = format!("u{}", i % 500);
            join(&c, &room, &who).await.unwrap();
            if i % 3 == 0 {
                c.disconnect().await;
                None
            } else {
                Some((i, c))
            }
        }));
    }
    let mut stay = Vec::new();
    for t in tasks {
        if let Some(c) = t.await.unwrap() {
            stay.push(c);
        }
    }
    for room in &rooms {
        let barrier = Publication {
            event: "barrier".into(),
            data: serde_json::Value::Null,
            from: None,
            ts_ms: 0,
        };
        engine.publish(room, barrier, None).await.unwrap();
    }
    for (r, room) in rooms.iter().enumerate() {
        let mut expected = std::collections::HashSet::new();
        for (i, _) in stay.iter().filter(|(i, _)| i % 10 == r) {
            expected.insert(i % 500);
        }
        let n = expected.len() as u64;
        assert_eq!(engine.count(room).await.unwrap(), n, "room {r}");
        for (_, c) in stay.iter().filter(|(i, _)| i % 10 == r) {
            // A remote broker delivers after `publish` returns; one node's messages of one
            // room arrive in order, so once the barrier is here every transition is too.
            let count_of = |out: &Outgoing| match out {
                Outgoing::Frame(b) => serde_json::from_slice::<serde_json::Value>(b)
                    .ok()
                    .and_then(|v| v.get("count").and_then(|c| c.as_u64())),
                Outgoing::Close(_) => None,
            };
            let is_barrier = |out: &Outgoing| match out {
                Outgoing::Frame(b) => matches!(
                    serde_json::from_slice::<RoomEvent>(b),
                    Ok(RoomEvent::Publication(p)) if p.event == "barrier"
                ),
                Outgoing::Close(_) => false,
            };
            let mut last = None;
            loop {
                let out = tokio::time::timeout(Duration::from_secs(10), c.outbox().next())
                    .await
                    .unwrap_or_else(|_| panic!("room {r}: the barrier did not arrive"));
                if is_barrier(&out) {
                    break;
                }
                last = count_of(&out).or(last);
            }
            while let Ok(out) =
                tokio::time::timeout(Duration::from_millis(0), c.outbox().next()).await
            {
                last = count_of(&out).or(last);
            }
            assert_eq!(last, Some(n), "a subscriber's last count in room {r}");
        }
    }
    for (_, c) in stay {
        c.disconnect().await;
    }
    for room in &rooms {
        assert_eq!(engine.count(room).await.unwrap(), 0);
    }
    engine.shutdown().await;
}

/// A fresh id, so suites sharing one store do not see each other.
pub fn unique(tag: &str) -> String {
    room(tag).as_str().to_owned()
}

/// The online-record contract: login, heartbeat only while online, logout once, conditional
/// expiry, retention, ordered pagination.
pub async fn online_records_follow_their_contract(backend: Backend) {
    use crate::records::Login;
    let store = backend.online.clone();
    let prefix = unique("rec");
    let ids: Vec<Identity> = (0..5)
        .map(|i| Identity::new(&format!("{prefix}-{i}")))
        .collect();
    let login = |p: &'static str, now: u64, keep: bool, who: &Identity| {
        let who = who.clone();
        let store = store.clone();
        async move {
            store
                .login(Login {
                    player: &who,
                    ip: p,
                    name: None,
                    now_ms: now,
                    keep_online: keep,
                    max_online: 0,
                })
                .await
                .unwrap()
                .expect("no cap")
        }
    };
    let a = &ids[0];
    assert_eq!(store.heartbeat(a, 1).await.unwrap(), None, "unknown");
    let (r, was) = login("1.1.1.1", 1000, false, a).await;
    assert!(!was && r.online && r.login_ms == 1000 && r.last_heartbeat_ms == 1000);
    let (r, was) = login("2.2.2.2", 1500, true, a).await;
    assert!(was, "already online");
    assert_eq!(
        (r.login_ms, r.ip.as_str()),
        (1000, "1.1.1.1"),
        "kept as it was"
    );
    let r = store.heartbeat(a, 2000).await.unwrap().unwrap();
    assert_eq!(r.last_heartbeat_ms, 2000);
    store.touch(&ids, 2500).await.unwrap();
    assert_eq!(
        store.get(a, 2500).await.unwrap().unwrap().last_heartbeat_ms,
        2500
    );
    assert_eq!(
        store.get(&ids[1], 2500).await.unwrap(),
        None,
        "touch creates nothing"
    );
    // Expiry loses to a later heartbeat, wins over an older one.
    assert_eq!(store.expire(a, 2400, 3000, 10_000).await.unwrap(), None);
    let r = store.expire(a, 2500, 3000, 10_000).await.unwrap().unwrap();
    assert!(!r.online);
    assert_eq!(r.logout_ms, Some(3000));
    assert_eq!(store.logout(a, 3100, 10_000).await.unwrap(), None, "once");
    assert_eq!(store.heartbeat(a, 3200).await.unwrap(), None, "offline");
    let kept = store.get(a, 3200).await.unwrap().unwrap();
    assert_eq!((kept.online, kept.logout_ms), (false, Some(3000)));
    // Logging in again starts a new period.
    let (r, was) = login("3.3.3.3", 4000, true, a).await;
    assert!(!was && r.online && r.login_ms == 4000 && r.logout_ms.is_none());
    let r = store.logout(a, 5000, 1000).await.unwrap().unwrap();
    assert_eq!(r.logout_ms, Some(5000));
    store.purge(7000).await.unwrap();
    assert_eq!(
        store.get(a, 7000).await.unwrap(),
        None,
        "gone after retention"
    );
    // Pagination: ascending ids, offline ones skipped.
    for (i, id) in ids.iter().enumerate() {
        login("ip", 10_000 + i as u64, false, id).await;
    }
    store.logout(&ids[2], 11_000, 60_000).await.unwrap();
    let mut seen = Vec::new();
    let mut after: Option<Identity> = Some(Identity::new(&format!("{prefix}-")));
    loop {
        let page = store.list_online(after.as_ref(), 2).await.unwrap();
        let mine: Vec<_> = page
            .iter()
            .filter(|r| r.player.as_str().starts_with(&prefix))
            .map(|r| r.player.clone())
            .collect();
        seen.extend(mine.iter().cloned());
        if page.len() < 2 || mine.len() < page.len() {
            break;
        }
        after = page.last().map(|r| r.player.clone());
    }
    let want: Vec<Identity> = [0, 1, 3, 4].iter().map(|&i| ids[i].clone()).collect();
    assert_eq!(seen, want);
    for id in &ids {
        store.logout(id, 20_000, 0).await.unwrap();
    }
}

/// The session contract: pushes are numbered, kept (latest `max`), refused once finished or
/// expired; expiry is reported once; removal is idempotent.
pub async fn sessions_follow_their_contract(backend: Backend) {
    use crate::sessions::{PushOutcome, SessionState, PENDING};
    let store = backend.sessions.clone();
    let new = |id: &str, expires_ms: u64| SessionState {
        id: id.to_owned(),
        kind: "qr_login".into(),
        status: PENDING.into(),
        created_ms: 1000,
        expires_ms,
        info: serde_json::Value::Null,
        finished: false,
        pushes: Vec::new(),
        seq: 0,
    };
    let a = unique("sess-a");
    let b = unique("sess-b");
    assert!(store
        .create(new(&a, 10_000), 1_000_000, 5000)
        .await
        .unwrap());
    assert!(store.create(new(&b, 3000), 1_000_000, 5000).await.unwrap());
    let msg = |s: &str| serde_json::json!({ "status": s });
    let push = |id: String, status: &'static str, close: bool, now: u64| {
        let store = store.clone();
        async move {
            store
                .push(&id, status, msg(status), close, now, 2)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        push(unique("nope"), "x", false, 1).await,
        PushOutcome::NotFound
    );
    for (n, s) in ["scanned", "scanned", "waiting"].iter().enumerate() {
        match push(a.clone(), s, false, 2000).await {
            PushOutcome::Pushed(p) => assert_eq!(p.seq, n as u64 + 1),
            other => panic!("{other:?}"),
        }
    }
    let st = store.get(&a).await.unwrap().unwrap();
    assert_eq!(st.status, "waiting");
    assert_eq!(st.pushes.iter().map(|p| p.seq).collect::<Vec<_>>(), [2, 3]);
    assert!(
        matches!(push(a.clone(), "confirmed", true, 2000).await, PushOutcome::Pushed(p) if p.close && p.seq == 4)
    );
    assert_eq!(
        push(a.clone(), "confirmed", true, 2001).await,
        PushOutcome::Finished
    );
    // b expires at 3000: a push at 3000 is refused even before the expiry pass runs.
    assert_eq!(
        push(b.clone(), "scanned", false, 3000).await,
        PushOutcome::Expired
    );
    let expired = store.expire_due(3000, msg("expired"), 2).await.unwrap();
    let mine: Vec<_> = expired.iter().filter(|(id, _)| id == &b).collect();
    assert_eq!(mine.len(), 1);
    assert!(mine[0].1.close);
    let again = store.expire_due(3001, msg("expired"), 2).await.unwrap();
    assert!(!again.iter().any(|(id, _)| id == &b || id == &a), "once");
    let st = store.get(&b).await.unwrap().unwrap();
    assert_eq!((st.status.as_str(), st.finished), ("expired", true));
    assert_eq!(
        push(b.clone(), "confirmed", true, 3002).await,
        PushOutcome::Expired
    );
    // Retention: gone after expiry + 5000.
    store.expire_due(8001, msg("expired"), 2).await.unwrap();
    assert_eq!(store.get(&b).await.unwrap(), None);
    assert!(store.remove(&a).await.unwrap());
    assert!(!store.remove(&a).await.unwrap(), "idempotent");
    assert_eq!(store.get(&a).await.unwrap(), None);
}

/// A transition reaches the observers of the node that produced it, identity-level ones once.
pub async fn observers_see_this_nodes_transitions(backend: Backend) {
    use std::sync::Mutex;
    struct Log(Mutex<Vec<(EventKind, bool, String)>>);
    impl crate::TransitionObserver for Log {
        fn produced(&self, _room: &Room, t: &PresenceEvent) {
            self.0.lock().unwrap().push((
                t.kind,
                t.identity_changed,
                t.member.identity.as_str().to_owned(),
            ));
        }
    }
    let engine = Engine::start(engine_config(), backend);
    let room = room("observed");
    let log = Arc::new(Log(Mutex::new(Vec::new())));
    engine.observe(room.clone(), log.clone());
    let c1 = engine.connect(Liveness::Socket);
    let c2 = engine.connect(Liveness::Socket);
    join(&c1, &room, "p").await.unwrap();
    join(&c2, &room, "p").await.unwrap();
    c1.disconnect().await;
    c2.disconnect().await;
    let other = engine.connect(Liveness::Socket);
    join(&other, &self::room("unobserved"), "q").await.unwrap();
    other.disconnect().await;
    let seen = log.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            (EventKind::Join, true, "p".into()),
            (EventKind::Join, false, "p".into()),
            (EventKind::Leave, false, "p".into()),
            (EventKind::Leave, true, "p".into()),
        ]
    );
    engine.shutdown().await;
}

/// Generates one `#[tokio::test]` per conformance check for a backend factory expression
/// (an `async` block or future yielding a [`Backend`]).
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@tests $make;
            identity_joins_on_first_connection_and_leaves_on_last,
            events_reach_subscribers_with_counts,
            http_style_update_needs_presence,
            room_limit_counts_identities,
            rekey_moves_the_identity,
            silent_connection_expires_and_heartbeat_rejoins,
            concurrent_joins_and_leaves_end_exact,
            metadata_writes_follow_revisions,
            metadata_concurrent_updates_have_one_winner_per_revision,
            metadata_lock_guards_writes,
            locks_are_exclusive_reentrant_and_expire,
            online_records_follow_their_contract,
            sessions_follow_their_contract,
            observers_see_this_nodes_transitions,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(backend) = $make.await else { return };
                $crate::conformance::$name(backend).await;
            }
        )*
    };
}
