//! The update script publishes its own room message (`lua/update.lua`): what the broker's
//! subscribers decode must be the `RoomMessage` the engine would have published for the
//! transition the store returned. Against a real `redis-server` on a free port, through the
//! backend's own traits (the broker's subscriber decodes what arrives).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use activenow_engine::store::{JoinOutcome, MessageSink, UpdateTarget};
use activenow_engine::{Backend, ConnId, Identity, Member, Room, RoomEvent, RoomMessage, State};
use activenow_redis::{connect, RedisOptions};
use activenow_testkit::RedisServer;
use serde_json::json;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

fn redis() -> Option<&'static RedisServer> {
    static REDIS: OnceLock<Option<RedisServer>> = OnceLock::new();
    REDIS.get_or_init(RedisServer::start).as_ref()
}

struct Sink(Mutex<mpsc::UnboundedSender<RoomMessage>>);

impl MessageSink for Sink {
    fn deliver(&self, msg: &RoomMessage) {
        let _ = self.0.lock().unwrap().send(msg.clone());
    }
}

async fn backend(prefix: &str) -> Option<(Backend, mpsc::UnboundedReceiver<RoomMessage>)> {
    let redis = redis()?;
    let options = RedisOptions::new(&redis.url(), prefix, Duration::from_secs(60));
    let backend = connect(&options).await.expect("connect");
    let (tx, rx) = mpsc::unbounded_channel();
    backend.broker.attach(Arc::new(Sink(Mutex::new(tx))));
    Some((backend, rx))
}

fn member(conn: &str, identity: &str, epoch: u64) -> Member {
    let mut state = State::new();
    state.insert("kept".into(), json!({"a": [1, 2.5, "x"], "b": null}));
    Member {
        conn: ConnId::new(conn),
        identity: Identity::new(identity),
        state,
        joined_at_ms: 1_795_392_000_123,
        updated_at_ms: 1_795_392_000_123,
        epoch,
    }
}

/// A patch with what JSON text can hold awkwardly: escapes, `/`, non-ASCII, big and
/// fractional numbers, empty arrays and objects.
fn patch() -> State {
    let mut p = State::new();
    p.insert(
        "quote\"and\\slash/".into(),
        json!("line\nbreak \u{1} tab\t"),
    );
    p.insert("周报".into(), json!("第一章 ✓"));
    p.insert("big".into(), json!(9007199254740993u64));
    p.insert("fraction".into(), json!(1234567890.1234567));
    p.insert("empty".into(), json!([]));
    p.insert("obj".into(), json!({}));
    p.insert("seq".into(), json!(42));
    p
}

async fn next(rx: &mut mpsc::UnboundedReceiver<RoomMessage>) -> RoomMessage {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a room message within the wait")
        .expect("the sink is open")
}

fn message(room: &Room, t: &activenow_engine::PresenceEvent) -> RoomMessage {
    RoomMessage {
        room: room.clone(),
        event: RoomEvent::Presence(t.clone()),
        exclude: None,
    }
}

#[tokio::test]
async fn an_update_publishes_the_message_the_engine_would() {
    let Some((backend, mut rx)) = backend("update-publish-c").await else {
        return;
    };
    assert!(backend.presence.publishes_updates());
    let room = Room::parse("r/\"周\"").unwrap();
    backend.broker.subscribe(&room).await.unwrap();
    let m = member("n1.1/\"x\"", "user/周 \"q\"", 1_795_392_000_777);
    let joined = backend.presence.join(&room, m.clone(), None).await.unwrap();
    assert!(matches!(joined, JoinOutcome::Joined(_)));
    let ts = 1_795_392_001_000;
    let target = UpdateTarget::Conn(m.conn.clone());
    for _ in 0..3 {
        let mut out = backend
            .presence
            .update(&room, &target, &patch(), ts)
            .await
            .unwrap();
        assert_eq!(out.len(), 1);
        let t = out.pop().unwrap();
        assert_eq!(t.member.state.len(), 8);
        assert_eq!(next(&mut rx).await, message(&room, &t));
    }
    backend.broker.close().await;
}

#[tokio::test]
async fn an_identity_update_publishes_one_message_per_connection() {
    let Some((backend, mut rx)) = backend("update-publish-i").await else {
        return;
    };
    let room = Room::parse("identity-room").unwrap();
    backend.broker.subscribe(&room).await.unwrap();
    for (conn, epoch) in [("n1.1", 1), ("n1.2", 2)] {
        let m = member(conn, "u1", epoch);
        backend.presence.join(&room, m, None).await.unwrap();
    }
    let target = UpdateTarget::Identity(Identity::new("u1"));
    let out = backend
        .presence
        .update(&room, &target, &patch(), 1_795_392_002_000)
        .await
        .unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out.iter().filter(|t| t.identity_changed).count(), 1);
    for t in &out {
        assert_eq!(next(&mut rx).await, message(&room, t));
    }
    backend.broker.close().await;
}
