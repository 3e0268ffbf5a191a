//! 1,000 clients join and leave at once across 10 rooms, through real sockets: afterwards
//! every count is exact and every remaining client's last `sync` equals its room's count.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use common::{settings, spawn, Client};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::Message;

const CLIENTS: usize = 1000;
const ROOMS: usize = 10;
/// Fewer identities than clients: some clients are second tabs (same room, since
/// 700 is a multiple of 10), so dedup is exercised under concurrency too.
const IDENTITIES: usize = 700;

fn leaves(i: usize) -> bool {
    i.is_multiple_of(3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_are_exact_after_a_burst_of_joins_and_leaves() {
    let server = Arc::new(spawn(settings()).await);
    let start = Arc::new(Barrier::new(CLIENTS));
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let server = server.clone();
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let room = i % ROOMS;
            let sid = i % IDENTITIES;
            let mut c = server
                .ws(&format!("/v1/ws?room=r{room}&socket_session_id=u{sid}"))
                .await;
            let hello = c.expect_type("hello").await;
            if leaves(i) {
                c.close().await;
                None
            } else {
                Some((i, c, hello["count"].as_u64().unwrap()))
            }
        }));
    }
    let mut stayers: Vec<(usize, Client, u64)> = Vec::new();
    for t in tasks {
        if let Some(s) = t.await.unwrap() {
            stayers.push(s);
        }
    }

    let mut expected: HashMap<usize, HashSet<usize>> = HashMap::new();
    for (i, _, _) in &stayers {
        expected
            .entry(i % ROOMS)
            .or_default()
            .insert(i % IDENTITIES);
    }
    let (_, rooms) = server.get("/v1/activity/rooms").await;
    for room in 0..ROOMS {
        let want = expected[&room].len();
        assert_eq!(
            rooms["room_count"][format!("r{room}")],
            want,
            "room r{room}: {rooms}"
        );
    }

    // Every remaining client's last count (hello or sync) equals its room's count. A ping
    // is the fence: the server reads it only when this socket's queue is empty, and answers
    // it after everything queued before, so what arrives before the pong is everything.
    let mut checks = Vec::new();
    for (i, mut c, mut last) in stayers {
        let want = expected[&(i % ROOMS)].len() as u64;
        checks.push(tokio::spawn(async move {
            c.stream
                .send(Message::Ping(b"fence".to_vec().into()))
                .await
                .unwrap();
            loop {
                let msg = tokio::time::timeout(common::WAIT, c.stream.next())
                    .await
                    .expect("fence answered")
                    .expect("open")
                    .expect("ok");
                match msg {
                    Message::Pong(p) if &p[..] == b"fence" => break,
                    Message::Text(t) => {
                        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                        if v["type"] == "sync" {
                            last = v["count"].as_u64().unwrap();
                        }
                    }
                    _ => {}
                }
            }
            assert_eq!(last, want, "client {i}'s last count");
            c
        }));
    }
    let mut open = Vec::new();
    for c in checks {
        open.push(c.await.unwrap());
    }
    drop(open);
    Arc::try_unwrap(server)
        .ok()
        .expect("sole owner")
        .stop()
        .await;
}
