//! Conformance checks for the read side of the server API: room figures, an identity's rooms,
//! and member pages that neither repeat nor skip a member while others come and go.

use std::collections::BTreeSet;

use super::support::{engine_config, join, room, unique};
use crate::engine::{Engine, Liveness};
use crate::model::Identity;
use crate::store::Backend;

pub async fn room_info_and_identity_rooms_follow_memberships(backend: Backend) {
    let engine = Engine::start(engine_config(), backend);
    let (a, b) = (room("info-a"), room("info-b"));
    let who = unique("carol");
    let other = unique("dave");
    let empty = engine.room_info(&a).await.unwrap();
    assert_eq!(
        (empty.count, empty.connections, empty.since_ms),
        (0, 0, None)
    );

    let tab1 = engine.connect(Liveness::Socket);
    let tab2 = engine.connect(Liveness::Socket);
    let peer = engine.connect(Liveness::Socket);
    let first = join(&tab1, &a, &who).await.unwrap();
    join(&tab2, &a, &who).await.unwrap();
    join(&tab2, &b, &who).await.unwrap();
    join(&peer, &a, &other).await.unwrap();

    let info = engine.room_info(&a).await.unwrap();
    assert_eq!((info.count, info.connections), (2, 3));
    let since = info.since_ms.expect("an occupied room has a since");
    assert!(
        since.abs_diff(first.member.joined_at_ms) < 60_000,
        "{since}"
    );

    let identity = Identity::new(&who);
    let rooms = engine.identity_rooms(&identity).await.unwrap();
    let summary: Vec<_> = rooms.iter().map(|(r, m)| (r.clone(), m.len())).collect();
    let mut want = vec![(a.clone(), 2), (b.clone(), 1)];
    want.sort();
    assert_eq!(summary, want);
    assert!(rooms
        .iter()
        .flat_map(|(_, m)| m)
        .all(|m| m.identity == identity));

    tab2.disconnect().await;
    let rooms = engine.identity_rooms(&identity).await.unwrap();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].0, a);
    assert_eq!(rooms[0].1[0].conn, *tab1.id());
    tab1.disconnect().await;
    assert!(engine.identity_rooms(&identity).await.unwrap().is_empty());
    assert_eq!(engine.room_info(&a).await.unwrap().count, 1);
    peer.disconnect().await;
    assert_eq!(engine.room_info(&a).await.unwrap().since_ms, None);
}

pub async fn member_pages_list_every_stayer_once(backend: Backend) {
    let engine = Engine::start(engine_config(), backend);
    let r = room("pages");
    let mut stayers = Vec::new();
    for i in 0..25 {
        let conn = engine.connect(Liveness::Socket);
        join(&conn, &r, &format!("stay-{i:02}")).await.unwrap();
        if i % 5 == 0 {
            // A second tab: pages count identities, and keep an identity's tabs together.
            let tab = engine.connect(Liveness::Socket);
            join(&tab, &r, &format!("stay-{i:02}")).await.unwrap();
            stayers.push(tab);
        }
        stayers.push(conn);
    }
    let mut churn = Vec::new();
    let mut seen = BTreeSet::new();
    let mut after: Option<Identity> = None;
    let mut pages = 0;
    loop {
        let page = engine.members_page(&r, after.as_ref(), 4).await.unwrap();
        if page.is_empty() {
            break;
        }
        pages += 1;
        let ids: BTreeSet<_> = page.iter().map(|m| m.identity.clone()).collect();
        assert!(ids.len() <= 4);
        let mut order = page.iter().map(|m| m.identity.clone()).collect::<Vec<_>>();
        order.dedup();
        assert_eq!(order.len(), ids.len(), "an identity's tabs are together");
        for id in &ids {
            assert!(seen.insert(id.clone()), "{id} listed twice");
            assert!(after.as_ref().is_none_or(|a| id > a), "pages are ordered");
        }
        after = order.last().cloned();
        // Churn between pages, before and after the cursor.
        for name in [format!("a-{pages}"), format!("zz-{pages}")] {
            let conn = engine.connect(Liveness::Socket);
            join(&conn, &r, &name).await.unwrap();
            churn.push(conn);
        }
        if pages % 2 == 0 && !churn.is_empty() {
            churn.remove(0).disconnect().await;
        }
    }
    for i in 0..25 {
        assert!(
            seen.contains(&Identity::new(&format!("stay-{i:02}"))),
            "stay-{i:02} skipped"
        );
    }
    assert!(pages >= 7);
}
