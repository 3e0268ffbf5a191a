//! Conformance check for the push-session store.

use super::support::unique;
use crate::store::Backend;

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
