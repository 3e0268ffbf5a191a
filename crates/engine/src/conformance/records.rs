//! Conformance check for the online-status record store.

use super::support::unique;
use crate::model::Identity;
use crate::store::Backend;

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
