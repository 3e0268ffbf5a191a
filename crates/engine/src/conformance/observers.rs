//! Conformance check for transition observers.

use std::sync::Arc;

use super::support::{engine_config, join, room};
use crate::engine::{Cause, Engine, Liveness, TransitionObserver};
use crate::model::{EventKind, PresenceEvent, Room};
use crate::store::Backend;

/// A transition reaches the observers of the node that produced it, identity-level ones once.
pub async fn observers_see_this_nodes_transitions(backend: Backend) {
    use std::sync::Mutex;
    struct Log(Mutex<Vec<(EventKind, bool, String, Cause)>>);
    impl TransitionObserver for Log {
        fn produced(&self, _room: &Room, t: &PresenceEvent, cause: Cause) {
            self.0.lock().unwrap().push((
                t.kind,
                t.identity_changed,
                t.member.identity.as_str().to_owned(),
                cause,
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
    join(&other, &super::support::room("unobserved"), "q")
        .await
        .unwrap();
    other.disconnect().await;
    let seen = log.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            (EventKind::Join, true, "p".into(), Cause::Join),
            (EventKind::Join, false, "p".into(), Cause::Join),
            (EventKind::Leave, false, "p".into(), Cause::Leave),
            (EventKind::Leave, true, "p".into(), Cause::Leave),
        ]
    );
    engine.shutdown().await;
}

/// Every transition reaches a global observer with why it happened: join, update, leave,
/// expiry, kick, shutdown. Internal rooms reach it too (filtering is the observer's job).
pub async fn observers_hear_the_cause_of_each_transition(backend: Backend) {
    use crate::model::{Identity, State};
    use std::time::Duration;
    use tokio::sync::mpsc;
    type Seen = (Room, EventKind, String, Cause);
    struct Feed(mpsc::UnboundedSender<Seen>);
    impl TransitionObserver for Feed {
        fn produced(&self, room: &Room, t: &PresenceEvent, cause: Cause) {
            if t.identity_changed {
                let who = t.member.identity.as_str().to_owned();
                let _ = self.0.send((room.clone(), t.kind, who, cause));
            }
        }
    }
    /// The next transition of this check's rooms (other suites may share the store, not
    /// this engine's observers, but stay safe).
    async fn next(rx: &mut mpsc::UnboundedReceiver<Seen>) -> (EventKind, String, Cause) {
        loop {
            let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("a transition within 5 s")
                .expect("observer alive");
            if got.0.as_str().starts_with("causes-") {
                return (got.1, got.2, got.3);
            }
        }
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let engine = Engine::start(engine_config(), backend);
    engine.observe_all(Arc::new(Feed(tx)));
    let room = room("causes");
    let a = engine.connect(Liveness::Socket);
    join(&a, &room, "a").await.unwrap();
    assert_eq!(
        next(&mut rx).await,
        (EventKind::Join, "a".into(), Cause::Join)
    );
    let mut patch = State::new();
    patch.insert("x".into(), 1.into());
    a.update(&room, &patch).await.unwrap();
    assert_eq!(
        next(&mut rx).await,
        (EventKind::Update, "a".into(), Cause::Update)
    );
    assert!(a.leave(&room).await.unwrap());
    assert_eq!(
        next(&mut rx).await,
        (EventKind::Leave, "a".into(), Cause::Leave)
    );

    // Silent: the reaper expires it.
    let silent = engine.connect(Liveness::Heartbeat {
        ttl: Duration::from_millis(150),
    });
    join(&silent, &room, "s").await.unwrap();
    assert_eq!(
        next(&mut rx).await,
        (EventKind::Join, "s".into(), Cause::Join)
    );
    assert_eq!(
        next(&mut rx).await,
        (EventKind::Leave, "s".into(), Cause::Ttl)
    );
    silent.disconnect().await;

    // Kicked: its close reports the kick.
    let k = engine.connect(Liveness::Socket);
    join(&k, &room, "k").await.unwrap();
    assert_eq!(
        next(&mut rx).await,
        (EventKind::Join, "k".into(), Cause::Join)
    );
    engine.kick(&Identity::new("k"), None).await.unwrap();
    loop {
        if let super::support::Seen::Closed = super::support::next(&k).await {
            break;
        }
    }
    k.disconnect().await;
    assert_eq!(
        next(&mut rx).await,
        (EventKind::Leave, "k".into(), Cause::Kicked)
    );

    // Shutdown: a connection closed after it began, and one the engine removes itself.
    let d = engine.connect(Liveness::Socket);
    join(&d, &room, "d").await.unwrap();
    assert_eq!(
        next(&mut rx).await,
        (EventKind::Join, "d".into(), Cause::Join)
    );
    let e = engine.connect(Liveness::Socket);
    join(&e, &room, "e").await.unwrap();
    assert_eq!(
        next(&mut rx).await,
        (EventKind::Join, "e".into(), Cause::Join)
    );
    engine.begin_shutdown();
    d.disconnect().await;
    assert_eq!(
        next(&mut rx).await,
        (EventKind::Leave, "d".into(), Cause::Shutdown)
    );
    engine.shutdown().await;
    assert_eq!(
        next(&mut rx).await,
        (EventKind::Leave, "e".into(), Cause::Shutdown)
    );
    drop(e);
}
