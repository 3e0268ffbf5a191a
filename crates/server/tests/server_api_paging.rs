//! Paged members of a 20,000-member room while members churn, on memory and on a real
//! Redis (docs/server-api.md#member-pages): `GET /v1/rooms/{room}/members?cursor=&limit=`
//! walked page by page while, between every two pages, real WebSocket clients join and
//! leave (closing their socket, or kicked by `DELETE /v1/users/{id}`) at random places of
//! the order, and members present the whole walk gain and lose second connections. Every
//! member present for the whole walk is listed exactly once, identities come in strictly
//! increasing byte order across pages (so none twice), and nothing is listed that was never
//! in the room.
//!
//! 19,900 members are written through the server's own store (`PresenceStore::join`, the
//! call a socket's join makes: on Redis the join script and both indexes), 100 are real
//! sockets: 20,000 sockets in one room would deliver 2·10⁸ join events first.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use activenow::Settings;
use activenow_engine::{Backend, ConnId, Identity, Member, Room};
use activenow_testkit::RedisServer;
use common::{spawn_with, Client, Ended, TestServer};
use serde_json::{json, Value};

const ROOM: &str = "hall";
const BEARER: &str = "Bearer test-key";
/// Members written through the store.
const FILLED: usize = 19_900;
/// Real sockets in the room before the walk (besides the watcher), interleaved with them.
const SOCKETS: usize = 99;
const LIMIT: usize = 200;

fn settings() -> Settings {
    let mut s = common::settings();
    s.api_key = "test-key".into();
    // The watcher reads every join and leave of the walk; room sockets do not heartbeat.
    s.send_queue_capacity = 4096;
    s.presence_ttl = 600;
    s
}

/// Memory, and Redis when a `redis-server` can be started (fails under CI=true without
/// one, skips loudly elsewhere).
async fn backends(redis: &Option<RedisServer>) -> Vec<Backend> {
    let mut out = vec![Backend::memory()];
    if let Some(redis) = redis {
        // Members written by the test are refreshed by no reaper tick; no node dies here,
        // so none is swept, and the long lookback keeps it so on a slow machine.
        let mut options =
            activenow_redis::RedisOptions::new(&redis.url(), "test", Duration::from_secs(600));
        options.prefix = "paging:".into();
        out.push(activenow_redis::connect(&options).await.expect("redis"));
    }
    out
}

/// xorshift64: the churn's places, the same on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

async fn fill(backend: &Backend) {
    use futures_util::StreamExt;
    let room = Room::parse(ROOM).expect("room");
    let now = activenow_engine::clock::now_ms();
    let presence = backend.presence.clone();
    let results: Vec<_> = futures_util::stream::iter(0..FILLED)
        .map(|i| {
            let (presence, room) = (presence.clone(), room.clone());
            async move {
                let member = Member {
                    conn: ConnId::new(&format!("fill.{i}")),
                    identity: Identity::new(&format!("m-{i:05}")),
                    state: serde_json::Map::new(),
                    joined_at_ms: now,
                    updated_at_ms: now,
                    epoch: 1,
                };
                presence.join(&room, member, None).await
            }
        })
        .buffer_unordered(128)
        .collect()
        .await;
    assert!(results.iter().all(Result::is_ok), "a store join failed");
}

async fn join(server: &TestServer, identity: &str) -> Client {
    let mut c = server
        .ws(&format!("/v1/ws?room={ROOM}&socket_session_id={identity}"))
        .await;
    c.expect_type("hello").await;
    c.until(|v| v["type"] == "ACTIVITY_JOIN_PRESENCE" && v["data"]["identity"] == identity)
        .await;
    c
}

/// Waits until the watcher sees `identity` leave (the store has applied it).
async fn left(watcher: &mut Client, identity: &str) {
    watcher
        .until(|v| v["type"] == "ACTIVITY_LEAVE_PRESENCE" && v["data"]["identity"] == identity)
        .await;
}

/// One HTTP client for the whole test (building one per request costs more than the page).
fn http() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(reqwest::Client::new)
}

async fn api(server: &TestServer, method: reqwest::Method, path: &str) -> (u16, Value) {
    let resp = http()
        .request(method, server.url(path))
        .header("authorization", BEARER)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_pages_have_no_duplicates_or_gaps_while_members_churn() {
    let redis = RedisServer::start();
    for backend in backends(&redis).await {
        let name = backend.name;
        let t = std::time::Instant::now();
        fill(&backend).await;
        eprintln!("{name}: filled in {:?}", t.elapsed());
        let server = spawn_with(settings(), backend).await;
        walk_while_churning(&server, name).await;
        eprintln!("{name}: filled and walked in {:?}", t.elapsed());
        server.stop().await;
    }
}

async fn walk_while_churning(server: &TestServer, backend: &str) {
    let mut watcher = join(server, "m-watcher").await;
    // Present for the whole walk: the filled members and the watcher; the sockets below
    // may leave during it.
    let mut stable: BTreeSet<String> = (0..FILLED).map(|i| format!("m-{i:05}")).collect();
    stable.insert("m-watcher".into());
    let mut churners: Vec<(String, Client)> = Vec::new();
    for k in 0..SOCKETS {
        let id = format!("m-{:05}-w", k * 201);
        churners.push((id.clone(), join(server, &id).await));
    }
    let mut ever: BTreeSet<String> = churners.iter().map(|(id, _)| id.clone()).collect();
    let (status, info) = api(server, reqwest::Method::GET, &format!("/v1/rooms/{ROOM}")).await;
    assert_eq!(
        (status, info["count"].clone()),
        (200, json!(20_000)),
        "{backend}: {info}"
    );

    // Before the churn: 20,000 members are exactly 20 full pages of 1,000, and the 20th says
    // it is the last (no empty page after it).
    let (mut cursor, mut full) = (String::new(), 0);
    loop {
        let (_, page) = api(
            server,
            reqwest::Method::GET,
            &format!("/v1/rooms/{ROOM}/members?limit=1000&cursor={cursor}"),
        )
        .await;
        assert_eq!(
            page["members"].as_array().map(Vec::len),
            Some(1000),
            "{backend}"
        );
        full += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(full, 20, "{backend}");

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut second: Vec<Client> = Vec::new();
    let (mut joins, mut leaves, mut pages) = (0usize, 0usize, 0usize);
    let mut last: Option<String> = None;
    let mut cursor = String::new();
    let mut seen = BTreeSet::new();
    loop {
        let (status, page) = api(
            server,
            reqwest::Method::GET,
            &format!("/v1/rooms/{ROOM}/members?limit={LIMIT}&cursor={cursor}"),
        )
        .await;
        assert_eq!(status, 200, "{backend}: {page}");
        pages += 1;
        let members = page["members"].as_array().expect("members");
        // Never an empty page: the last one (null cursor) is the last with members.
        assert!(
            !members.is_empty() && members.len() <= LIMIT,
            "{backend}: a page of {}",
            members.len()
        );
        for m in members {
            let id = m["identity"].as_str().expect("identity").to_owned();
            // Strictly increasing across pages: no identity twice, none out of order.
            assert!(
                last.as_ref().is_none_or(|l| l < &id),
                "{backend}: {id} after {last:?} (page {pages})"
            );
            assert!(
                stable.contains(&id) || ever.contains(&id),
                "{backend}: {id} was never in the room"
            );
            assert!(m["connections"].as_u64().unwrap_or(0) >= 1, "{m}");
            seen.insert(id.clone());
            last = Some(id);
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }

        // Churn before the next page, anywhere in the order (behind and ahead of the cursor).
        let id = format!("m-{:05}-n{pages}", rng.below(FILLED));
        ever.insert(id.clone());
        churners.push((id.clone(), join(server, &id).await));
        joins += 1;
        let (id, mut client) = churners.swap_remove(rng.below(churners.len()));
        if pages % 3 == 0 {
            let (status, reply) =
                api(server, reqwest::Method::DELETE, &format!("/v1/users/{id}")).await;
            assert_eq!(
                (status, reply["connections"].clone()),
                (200, json!(1)),
                "{reply}"
            );
            assert_eq!(client.ended().await, Ended::Closed(Some(4003)));
        } else {
            client.close().await;
        }
        left(&mut watcher, &id).await;
        leaves += 1;
        // A member present the whole walk gains a second connection, and loses it again.
        if pages % 5 == 0 {
            let id = format!("m-{:05}", rng.below(FILLED));
            let mut c = server
                .ws(&format!("/v1/ws?room={ROOM}&socket_session_id={id}"))
                .await;
            c.expect_type("hello").await;
            second.push(c);
            if second.len() > 2 {
                second.remove(0).close().await;
            }
        }
    }

    // Listed at most once (the order above), and at least once: no gap.
    let missing: Vec<_> = stable.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "{backend}: {} missing: {missing:?}",
        missing.len()
    );
    eprintln!("{backend}: {pages} pages, {joins} joins and {leaves} leaves during the walk");
    assert!(pages >= 20_000 / LIMIT, "{backend}: {pages} pages");
    let (_, info) = api(server, reqwest::Method::GET, &format!("/v1/rooms/{ROOM}")).await;
    assert_eq!(
        info["count"],
        json!(20_000 + joins - leaves),
        "{backend}: {info}"
    );
    for c in second {
        c.close().await;
    }
    for (_, c) in churners {
        c.close().await;
    }
    watcher.close().await;
}
