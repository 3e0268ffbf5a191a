//! Conformance checks for presence: identities across connections, events and counts,
//! updates, room limits, re-keying, TTL, and exact counts under a burst of joins and leaves.

use std::time::Duration;

use super::support::{await_count, engine_config, join, next, next_presence, recorder, room, Seen};
use crate::engine::{Engine, Liveness};
use crate::error::EngineError;
use crate::model::{EventKind, Identity, Publication, Room, RoomEvent, State};
use crate::outbox::Outgoing;
use crate::store::Backend;

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

/// Updates sent at once over many rooms (a backend may send them together, as Redis does in
/// one script call per slot) each come back with their own connection's transition, are
/// stored, and keep each room's versions growing.
pub async fn concurrent_updates_each_get_their_own_transition(backend: Backend) {
    let engine = Engine::start(engine_config(), backend);
    let rooms: Vec<Room> = (0..40).map(|i| room(&format!("updates{i}"))).collect();
    let mut conns = Vec::new();
    for i in 0..200usize {
        let c = engine.connect(Liveness::Socket);
        join(&c, &rooms[i % 40], &format!("u{i}")).await.unwrap();
        conns.push(std::sync::Arc::new(c));
    }
    for round in 0..3u64 {
        let mut tasks = Vec::new();
        for (i, c) in conns.iter().enumerate() {
            let c = c.clone();
            let room = rooms[i % 40].clone();
            tasks.push(tokio::spawn(async move {
                let mut patch = State::new();
                patch.insert("n".into(), serde_json::json!(i));
                patch.insert("round".into(), serde_json::json!(round));
                let t = c.update(&room, &patch).await.unwrap();
                (i, c.id().clone(), t)
            }));
        }
        let mut versions: Vec<Vec<u64>> = vec![Vec::new(); 40];
        for task in tasks {
            let (i, conn, t) = task.await.unwrap();
            assert_eq!(t.kind, EventKind::Update);
            assert_eq!(t.member.conn, conn, "update {i} got another's transition");
            assert_eq!(t.member.identity, Identity::new(&format!("u{i}")));
            assert_eq!(t.member.state.get("n"), Some(&serde_json::json!(i)));
            assert_eq!(t.member.state.get("round"), Some(&serde_json::json!(round)));
            assert_eq!(t.count, 5);
            versions[i % 40].push(t.version);
        }
        for (r, mut v) in versions.into_iter().enumerate() {
            let n = v.len();
            v.sort_unstable();
            v.dedup();
            assert_eq!(v.len(), n, "room {r}: two updates with one version");
        }
    }
    for (r, room) in rooms.iter().enumerate() {
        let members = engine.members(room).await.unwrap();
        assert_eq!(members.len(), 5, "room {r}");
        for m in members {
            let i = conns.iter().position(|c| c.id() == &m.conn).unwrap();
            assert_eq!(m.state.get("n"), Some(&serde_json::json!(i)));
            assert_eq!(m.state.get("round"), Some(&serde_json::json!(2)));
        }
    }
    for c in conns {
        if let Ok(c) = std::sync::Arc::try_unwrap(c) {
            c.disconnect().await;
        }
    }
    engine.shutdown().await;
}
