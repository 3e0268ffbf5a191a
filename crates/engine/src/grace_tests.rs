//! The leave grace on tokio's paused clock (virtual time: the bounds are exact), on the
//! memory backend.

use std::time::Duration;

use tokio::time::Instant;

use crate::conformance::{engine_config, next_within, recorder, room, Seen};
use crate::engine::{Connection, Engine, EngineConfig, GraceOn, Liveness};
use crate::model::{EventKind, Identity, PresenceEvent, Room, RoomEvent, State};
use crate::store::Backend;

const GRACE: Duration = Duration::from_secs(5);

fn config(on: GraceOn) -> EngineConfig {
    EngineConfig {
        leave_grace: GRACE,
        leave_grace_on: on,
        ..engine_config()
    }
}

async fn member(engine: &Engine, room: &Room, who: &str, liveness: Liveness) -> Connection {
    let c = engine.connect(liveness);
    c.join(
        room.clone(),
        Identity::new(who),
        State::new(),
        recorder(),
        None,
    )
    .await
    .unwrap();
    c
}

async fn next_leave(watcher: &Connection) -> PresenceEvent {
    loop {
        if let Seen::Event(RoomEvent::Presence(e)) =
            next_within(watcher, Duration::from_secs(120)).await
        {
            if e.kind == EventKind::Leave {
                return e;
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_reconnect_within_the_grace_changes_no_identity() {
    let engine = Engine::start(config(GraceOn::default()), Backend::memory());
    let room = room("grace");
    let watcher = member(&engine, &room, "w", Liveness::Socket).await;
    let first = member(&engine, &room, "alice", Liveness::Socket).await;
    let old = first.id().clone();
    let dropped = Instant::now();
    first.disconnect().await;
    assert_eq!(engine.lingering_connections(), 1);
    assert_eq!(
        engine.local_connections(),
        1,
        "a lingering one holds no socket"
    );
    assert_eq!(engine.count(&room).await.unwrap(), 2);

    tokio::time::sleep(GRACE / 2).await;
    let second = engine.connect(Liveness::Socket);
    let join = second
        .join(
            room.clone(),
            Identity::new("alice"),
            State::new(),
            recorder(),
            None,
        )
        .await
        .unwrap();
    assert!(!join.identity_changed, "alice never left");

    let leave = next_leave(&watcher).await;
    assert_eq!(leave.member.conn, old);
    assert!(!leave.identity_changed, "alice is still there");
    assert!(dropped.elapsed() >= GRACE);
    assert_eq!(leave.count, 2);
    assert_eq!(engine.lingering_connections(), 0);
    engine.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_grace_ending_is_one_leave_of_the_identity() {
    let engine = Engine::start(config(GraceOn::default()), Backend::memory());
    let room = room("grace-end");
    let watcher = member(&engine, &room, "w", Liveness::Socket).await;
    let bob = member(
        &engine,
        &room,
        "bob",
        Liveness::Heartbeat {
            ttl: Duration::from_secs(30),
        },
    )
    .await;
    let dropped = Instant::now();
    bob.disconnect().await;
    let leave = next_leave(&watcher).await;
    assert_eq!(leave.member.identity, Identity::new("bob"));
    assert!(leave.identity_changed);
    let waited = dropped.elapsed();
    assert!(
        waited >= GRACE && waited < GRACE + Duration::from_secs(1),
        "{waited:?}"
    );
    assert_eq!(engine.count(&room).await.unwrap(), 1);
    engine.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn no_grace_for_drops_unless_asked_and_ttl_waits_when_asked() {
    let on = GraceOn {
        close: false,
        ttl: true,
    };
    let engine = Engine::start(config(on), Backend::memory());
    let room = room("grace-ttl");
    let watcher = member(&engine, &room, "w", Liveness::Socket).await;
    let gone = member(&engine, &room, "gone", Liveness::Socket).await;
    gone.disconnect().await;
    assert_eq!(engine.lingering_connections(), 0);
    assert_eq!(
        engine.count(&room).await.unwrap(),
        1,
        "a drop leaves at once"
    );
    assert_eq!(
        next_leave(&watcher).await.member.identity,
        Identity::new("gone")
    );

    let ttl = engine.config().presence_ttl;
    let started = Instant::now();
    let _silent = member(&engine, &room, "s", Liveness::Heartbeat { ttl }).await;
    let leave = next_leave(&watcher).await;
    assert_eq!(leave.member.identity, Identity::new("s"));
    let waited = started.elapsed();
    assert!(waited >= ttl + GRACE, "expired after {waited:?}");
    assert!(waited <= ttl + GRACE + engine.config().reaper_interval);
    engine.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_connection_the_server_finished_does_not_linger() {
    let engine = Engine::start(config(GraceOn::default()), Backend::memory());
    let room = room("grace-finished");
    let c = member(&engine, &room, "t", Liveness::Socket).await;
    c.outbox().finish();
    c.disconnect().await;
    assert_eq!(engine.lingering_connections(), 0);
    assert_eq!(engine.count(&room).await.unwrap(), 0);
    engine.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_leaves_lingering_connections() {
    let engine = Engine::start(config(GraceOn::default()), Backend::memory());
    let room = room("grace-stop");
    let c = member(&engine, &room, "x", Liveness::Socket).await;
    c.disconnect().await;
    assert_eq!(engine.count(&room).await.unwrap(), 1);
    engine.shutdown().await;
    assert_eq!(engine.count(&room).await.unwrap(), 0);
}
