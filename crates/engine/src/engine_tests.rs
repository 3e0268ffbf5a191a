//! Engine tests on the memory backend: the conformance suite, and TTL on tokio's paused
//! clock (virtual time, so the bounds below are exact, not timing-dependent).

use std::time::Duration;

use tokio::time::Instant;

use crate::conformance::{engine_config, next_within, recorder, room, Seen};
use crate::engine::{Engine, Liveness};
use crate::model::{EventKind, Identity, RoomEvent, State};
use crate::store::Backend;

crate::conformance_suite!(async { Some(Backend::memory()) });

#[tokio::test(start_paused = true)]
async fn expiry_happens_between_ttl_and_ttl_plus_one_reaper_interval() {
    let config = engine_config(); // TTL 30 s, reaper every 100 ms
    let ttl = config.presence_ttl;
    let interval = config.reaper_interval;
    let engine = Engine::start(config, Backend::memory());
    let room = room("paused");
    let watcher = engine.connect(Liveness::Socket);
    watcher
        .join(
            room.clone(),
            Identity::new("w"),
            State::new(),
            recorder(),
            None,
        )
        .await
        .unwrap();
    let silent = engine.connect(Liveness::Heartbeat {
        ttl: engine.config().presence_ttl,
    });
    let started = Instant::now();
    silent
        .join(
            room.clone(),
            Identity::new("s"),
            State::new(),
            recorder(),
            None,
        )
        .await
        .unwrap();
    let leave = loop {
        if let Seen::Event(RoomEvent::Presence(e)) = next_within(&watcher, ttl * 2).await {
            if e.kind == EventKind::Leave {
                break e;
            }
        }
    };
    let waited = started.elapsed();
    assert_eq!(leave.member.identity, Identity::new("s"));
    assert!(waited >= ttl, "expired after {waited:?}, before the TTL");
    assert!(
        waited <= ttl + interval,
        "expired after {waited:?}, later than TTL + interval"
    );
    engine.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn heartbeats_keep_a_connection_present() {
    let engine = Engine::start(engine_config(), Backend::memory());
    let room = room("kept");
    let c = engine.connect(Liveness::Heartbeat {
        ttl: engine.config().presence_ttl,
    });
    c.join(
        room.clone(),
        Identity::new("k"),
        State::new(),
        recorder(),
        None,
    )
    .await
    .unwrap();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_secs(15)).await;
        c.heartbeat().await.unwrap();
        assert_eq!(engine.count(&room).await.unwrap(), 1);
    }
    assert!(!c.is_expired());
    // Socket-kept connections never expire.
    let s = engine.connect(Liveness::Socket);
    s.join(
        room.clone(),
        Identity::new("sock"),
        State::new(),
        recorder(),
        None,
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(
        engine.count(&room).await.unwrap(),
        1,
        "only the socket-kept one is left"
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn shutdown_removes_this_nodes_presence() {
    let engine = Engine::start(engine_config(), Backend::memory());
    let room = room("shutdown");
    let mut conns = Vec::new();
    for who in ["a", "b", "c"] {
        let c = engine.connect(Liveness::Socket);
        c.join(
            room.clone(),
            Identity::new(who),
            State::new(),
            recorder(),
            None,
        )
        .await
        .unwrap();
        conns.push(c);
    }
    assert_eq!(engine.count(&room).await.unwrap(), 3);
    engine.shutdown().await;
    assert_eq!(engine.count(&room).await.unwrap(), 0);
}

#[tokio::test]
async fn epochs_grow_on_every_join() {
    let engine = Engine::start(engine_config(), Backend::memory());
    let room = room("epoch");
    let c = engine.connect(Liveness::Socket);
    let first = c
        .join(
            room.clone(),
            Identity::new("e"),
            State::new(),
            recorder(),
            None,
        )
        .await
        .unwrap();
    let again = c
        .join(
            room.clone(),
            Identity::new("e"),
            State::new(),
            recorder(),
            None,
        )
        .await
        .unwrap();
    assert!(again.member.epoch > first.member.epoch);
    assert!(!again.identity_changed, "a rejoin is not a new identity");
    assert_eq!(engine.count(&room).await.unwrap(), 1);
    c.disconnect().await;
    engine.shutdown().await;
}
