//! Conformance check for transition observers.

use std::sync::Arc;

use super::support::{engine_config, join, room};
use crate::engine::{Engine, Liveness, TransitionObserver};
use crate::model::{EventKind, PresenceEvent, Room};
use crate::store::Backend;

/// A transition reaches the observers of the node that produced it, identity-level ones once.
pub async fn observers_see_this_nodes_transitions(backend: Backend) {
    use std::sync::Mutex;
    struct Log(Mutex<Vec<(EventKind, bool, String)>>);
    impl TransitionObserver for Log {
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
    join(&other, &super::support::room("unobserved"), "q")
        .await
        .unwrap();
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
