//! Conformance checks for channel metadata and named locks: every backend's
//! [`MetadataStore`](crate::store::MetadataStore) and [`LockStore`](crate::store::LockStore)
//! must pass them (the Redis backend with its Lua compare-and-set).

use std::collections::HashSet;
use std::time::Duration;

use super::support::{engine_config, room};
use crate::engine::Engine;
use crate::metadata::{
    ChannelKey, MetadataError, MetadataItem, MetadataLimits, MetadataOp, MetadataWrite,
};
use crate::store::Backend;
use crate::store::{LockAcquire, LockRelease};

pub const LIMITS: MetadataLimits = MetadataLimits {
    max_items: 64,
    max_key_bytes: 64,
    max_value_bytes: 1024,
};

/// A fresh channel, so suites sharing one store do not see each other.
pub fn channel(tag: &str) -> ChannelKey {
    ChannelKey {
        channel_type: "room".into(),
        channel_name: room(tag).as_str().to_owned(),
    }
}

fn item(key: &str, value: Option<&str>, revision: Option<i64>) -> MetadataItem {
    MetadataItem {
        key: key.into(),
        value: value.map(Into::into),
        revision,
    }
}

fn write(op: MetadataOp, items: Vec<MetadataItem>, actor: &str) -> MetadataWrite {
    MetadataWrite {
        op,
        items,
        major_revision: None,
        lock_name: None,
        add_timestamp: false,
        add_user_id: false,
        actor: Some(actor.into()),
    }
}

pub async fn metadata_writes_follow_revisions(backend: Backend) {
    let engine = Engine::start(engine_config(), backend);
    let ch = channel("meta");
    let empty = engine.metadata(&ch).await.unwrap();
    assert_eq!((empty.major_revision, empty.items.len()), (0, 0));

    let mut set = write(
        MetadataOp::Set,
        vec![
            item("topic", Some("hi"), None),
            item("mode", Some("a"), None),
        ],
        "u1",
    );
    set.add_user_id = true;
    set.add_timestamp = true;
    let c = engine.write_metadata(&ch, &set, &LIMITS).await.unwrap();
    assert!(c.changed);
    assert_eq!(c.metadata.major_revision, 1);
    assert_eq!(c.metadata.items["topic"].revision, 1);
    assert_eq!(c.metadata.items["topic"].author_uid.as_deref(), Some("u1"));
    assert!(c.metadata.items["topic"].updated.is_some());
    assert_eq!(engine.metadata(&ch).await.unwrap(), c.metadata);

    let upd = write(
        MetadataOp::Update,
        vec![item("topic", Some("there"), Some(1))],
        "u2",
    );
    let c = engine.write_metadata(&ch, &upd, &LIMITS).await.unwrap();
    assert_eq!(c.metadata.major_revision, 2);
    assert_eq!(c.metadata.items["topic"].value, "there");
    assert_eq!(c.metadata.items["topic"].revision, 2);
    assert_eq!(c.items, vec![item("topic", Some("there"), Some(2))]);
    // The same expected revision again is stale now.
    let err = engine.write_metadata(&ch, &upd, &LIMITS).await.unwrap_err();
    assert!(matches!(err, MetadataError::Conflict(_)), "{err:?}");
    let mut major = write(MetadataOp::Set, vec![], "u1");
    major.major_revision = Some(1);
    let err = engine
        .write_metadata(&ch, &major, &LIMITS)
        .await
        .unwrap_err();
    assert!(matches!(err, MetadataError::Conflict(_)), "{err:?}");
    let missing = write(
        MetadataOp::Update,
        vec![item("nope", Some("x"), None)],
        "u1",
    );
    let err = engine
        .write_metadata(&ch, &missing, &LIMITS)
        .await
        .unwrap_err();
    assert!(matches!(err, MetadataError::Invalid(_)), "{err:?}");

    let rm = write(MetadataOp::Remove, vec![item("mode", None, None)], "u1");
    let c = engine.write_metadata(&ch, &rm, &LIMITS).await.unwrap();
    assert_eq!(c.metadata.major_revision, 3);
    assert_eq!(c.items, vec![item("mode", Some("a"), Some(1))]);
    let c = engine.write_metadata(&ch, &rm, &LIMITS).await.unwrap();
    assert!(!c.changed, "removing an absent key changes nothing");
    assert_eq!(c.metadata.major_revision, 3);
    let all = write(MetadataOp::Remove, vec![], "u1");
    let c = engine.write_metadata(&ch, &all, &LIMITS).await.unwrap();
    assert_eq!((c.metadata.major_revision, c.metadata.items.len()), (4, 0));
    let kept = engine.metadata(&ch).await.unwrap();
    assert_eq!(
        kept.major_revision, 4,
        "an emptied channel keeps its major revision"
    );
    engine.shutdown().await;
}

/// 20 writers race on one item, each expecting the revision it last read and retrying on
/// conflict: every revision has exactly one winner and no increment is lost.
pub async fn metadata_concurrent_updates_have_one_winner_per_revision(backend: Backend) {
    let engine = Engine::start(engine_config(), backend);
    let ch = channel("race");
    let set = write(MetadataOp::Set, vec![item("n", Some("0"), None)], "setup");
    engine.write_metadata(&ch, &set, &LIMITS).await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..20 {
        let engine = engine.clone();
        let ch = ch.clone();
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            let mut conflicts = 0;
            loop {
                let current = engine.metadata(&ch).await.unwrap();
                let entry = &current.items["n"];
                let next = entry.value.parse::<u64>().unwrap() + 1;
                let upd = write(
                    MetadataOp::Update,
                    vec![item(
                        "n",
                        Some(&next.to_string()),
                        Some(entry.revision as i64),
                    )],
                    &format!("w{w}"),
                );
                match engine.write_metadata(&ch, &upd, &LIMITS).await {
                    Ok(c) => {
                        won.push(c.metadata.items["n"].revision);
                        return (won, conflicts);
                    }
                    Err(MetadataError::Conflict(_)) => conflicts += 1,
                    Err(e) => panic!("unexpected error {e:?}"),
                }
            }
        }));
    }
    let mut revisions = HashSet::new();
    let mut conflicts = 0;
    for t in tasks {
        let (won, c) = t.await.unwrap();
        conflicts += c;
        for r in won {
            assert!(revisions.insert(r), "revision {r} won twice");
        }
    }
    assert_eq!(revisions, (2..=21).collect::<HashSet<u64>>());
    let last = engine.metadata(&ch).await.unwrap();
    assert_eq!(last.items["n"].value, "20", "no increment lost");
    assert_eq!(last.items["n"].revision, 21);
    assert_eq!(last.major_revision, 21);
    let _ = conflicts;
    engine.shutdown().await;
}

pub async fn metadata_lock_guards_writes(backend: Backend) {
    let engine = Engine::start(engine_config(), backend);
    let ch = channel("locked");
    let lock = format!("lock-{}", ch.channel_name);
    let mut set = write(MetadataOp::Set, vec![item("k", Some("v"), None)], "alice");
    set.lock_name = Some(lock.clone());
    let err = engine.write_metadata(&ch, &set, &LIMITS).await.unwrap_err();
    assert!(matches!(err, MetadataError::Lock(_)), "free lock: {err:?}");
    assert_eq!(
        engine.acquire_lock(&lock, "bob", 10_000).await.unwrap(),
        LockAcquire::Acquired { ttl_ms: 10_000 }
    );
    let err = engine.write_metadata(&ch, &set, &LIMITS).await.unwrap_err();
    assert!(matches!(err, MetadataError::Lock(_)), "bob's lock: {err:?}");
    set.actor = None;
    let err = engine.write_metadata(&ch, &set, &LIMITS).await.unwrap_err();
    assert!(matches!(err, MetadataError::Lock(_)), "no actor: {err:?}");
    set.actor = Some("bob".into());
    engine.write_metadata(&ch, &set, &LIMITS).await.unwrap();
    assert_eq!(engine.metadata(&ch).await.unwrap().major_revision, 1);
    engine.release_lock(&lock, "bob").await.unwrap();
    engine.shutdown().await;
}

pub async fn locks_are_exclusive_reentrant_and_expire(backend: Backend) {
    let engine = Engine::start(engine_config(), backend);
    let lock = format!("lock-{}", room("lock").as_str());
    assert_eq!(engine.lock_holder(&lock).await.unwrap(), None);
    assert_eq!(
        engine.acquire_lock(&lock, "a", 5_000).await.unwrap(),
        LockAcquire::Acquired { ttl_ms: 5_000 }
    );
    match engine.acquire_lock(&lock, "b", 5_000).await.unwrap() {
        LockAcquire::Held(h) => {
            assert_eq!(h.owner, "a");
            assert!(h.ttl_ms > 0 && h.ttl_ms <= 5_000);
        }
        other => panic!("b took a held lock: {other:?}"),
    }
    // The holder re-acquiring extends it.
    assert_eq!(
        engine.acquire_lock(&lock, "a", 300).await.unwrap(),
        LockAcquire::Acquired { ttl_ms: 300 }
    );
    assert_eq!(
        engine.release_lock(&lock, "b").await.unwrap(),
        LockRelease::HeldByOther("a".into())
    );
    // Expiry is the backend's TTL: wait it out (no event to await).
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(engine.lock_holder(&lock).await.unwrap(), None);
    assert_eq!(
        engine.acquire_lock(&lock, "b", 5_000).await.unwrap(),
        LockAcquire::Acquired { ttl_ms: 5_000 }
    );
    assert_eq!(engine.lock_holder(&lock).await.unwrap().unwrap().owner, "b");
    assert_eq!(
        engine.release_lock(&lock, "b").await.unwrap(),
        LockRelease::Released
    );
    assert_eq!(
        engine.release_lock(&lock, "b").await.unwrap(),
        LockRelease::NotHeld
    );
    engine.shutdown().await;
}
