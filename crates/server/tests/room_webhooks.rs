//! Room webhooks on the memory backend, through real clients (the ActiveNow WebSocket and
//! HTTP API, Socket.IO) and a real receiver that verifies every signature: each transition
//! gives exactly its events with the right reason, the filters hold, and a burst behind a
//! stalled receiver goes out in bounded batches, every event once and in order.

mod common;
mod webhook_support;

use common::eio::{Eio, WEBSOCKET};
use common::{settings, spawn, Client, TestServer};
use serde_json::Value;
use webhook_support::{briefs, Receiver, SECRET};

const API_KEY: &str = "rooms-key";

fn with_hooks(url: &str, events: &str) -> activenow::Settings {
    let mut s = settings();
    s.webhook_url = url.to_owned();
    s.webhook_secret = SECRET.into();
    s.webhook_events = events.into();
    s.webhook_backoff_ms = 10;
    s.webhook_timeout_ms = 60_000;
    s.presence_reaper_interval_ms = 50;
    s.api_key = API_KEY.into();
    s
}

/// Joins `room` as `sid` over the ActiveNow WebSocket; returns after its own join.
async fn join(server: &TestServer, room: &str, sid: &str) -> Client {
    let mut c = server
        .ws(&format!("/v1/ws?room={room}&socket_session_id={sid}"))
        .await;
    c.expect_type("hello").await;
    c.until(|v| v["type"] == "ACTIVITY_JOIN_PRESENCE" && v["data"]["identity"] == sid)
        .await;
    c
}

/// A join in a room of its own whose `member.joined` marks "everything before has arrived".
async fn barrier(server: &TestServer, hooks: &mut Receiver, tag: &str) -> Vec<Value> {
    let room = format!("barrier-{tag}");
    let c = join(server, &room, tag).await;
    let before = hooks.until_joined(&room, tag).await;
    // Its own leave is drained by the next barrier's caller only if it matters; close it now
    // and skip what it produces.
    c.close().await;
    let left = hooks.next().await;
    assert_eq!(left["type"], "member.left", "{left}");
    assert_eq!(hooks.next().await["type"], "room.vacated");
    before
}

#[tokio::test]
async fn joins_updates_leaves_and_rekeys_give_their_events() {
    let mut hooks = Receiver::start().await;
    let server = spawn(with_hooks(&hooks.url, "*")).await;

    let alice = join(&server, "lobby", "alice").await;
    let bob = join(&server, "lobby", "bob").await;
    // A second tab of Alice's: no event (nor a join frame: the hello says it joined).
    let mut alice_tab = server.ws("/v1/ws?room=lobby&socket_session_id=alice").await;
    assert_eq!(alice_tab.expect_type("hello").await["count"], 2);
    let (status, _) = server
        .post(
            "/v1/activity/presence/update",
            &[("x-socket-session-id", "alice")],
            r#"{"room_name":"lobby","display_name":"Alice"}"#,
        )
        .await;
    assert_eq!(status, 200);
    alice.close().await;
    let events = barrier(&server, &mut hooks, "b1").await;
    assert_eq!(
        briefs(&events),
        [
            "room.occupied lobby alice",
            "member.joined lobby alice",
            "member.joined lobby bob",
            "member.updated lobby alice",
        ]
    );
    let counts: Vec<u64> = events
        .iter()
        .map(|e| e["data"]["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [1, 1, 2, 2]);
    assert_eq!(
        events[3]["data"]["state"]["displayName"], "Alice",
        "{}",
        events[3]
    );
    // Versions grow with every transition of the room; ids are unique.
    let versions: Vec<u64> = events
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert!(versions.windows(2).all(|w| w[0] <= w[1]), "{versions:?}");
    assert_eq!(
        versions[0], versions[1],
        "occupied and joined are one transition"
    );
    let mut ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), events.len());
    for e in &events {
        assert!(e["timestamp"].as_u64().unwrap() > 1_700_000_000_000, "{e}");
    }

    // updateSid re-keys Bob: bob leaves, robert joins.
    let mut bob = bob;
    bob.send_json(serde_json::json!({"type": "updateSid", "session_id": "robert"}))
        .await;
    bob.until(|v| v["type"] == "ACTIVITY_JOIN_PRESENCE" && v["data"]["identity"] == "robert")
        .await;
    alice_tab.close().await;
    bob.close().await;
    let events = barrier(&server, &mut hooks, "b2").await;
    assert_eq!(
        briefs(&events),
        [
            "member.left lobby bob leave",
            "member.joined lobby robert",
            "member.left lobby alice leave",
            "member.left lobby robert leave",
            "room.vacated lobby robert leave",
        ]
    );
    assert!(events[0]["data"].get("state").is_none(), "{}", events[0]);
    assert_eq!(events[4]["data"]["count"], 0);
    server.stop().await;
}

#[tokio::test]
async fn expiry_kick_and_shutdown_give_their_reasons() {
    let mut hooks = Receiver::start().await;
    let server = spawn(with_hooks(&hooks.url, "*")).await;

    // Kicked through the server API.
    let mut carol = join(&server, "arena", "carol").await;
    let dave = join(&server, "arena", "dave").await;
    let resp = reqwest::Client::new()
        .delete(server.url("/v1/users/carol"))
        .header("authorization", format!("Bearer {API_KEY}"))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(carol.ended().await, common::Ended::Closed(Some(4003)));
    let events = barrier(&server, &mut hooks, "k").await;
    assert_eq!(
        briefs(&events),
        [
            "room.occupied arena carol",
            "member.joined arena carol",
            "member.joined arena dave",
            "member.left arena carol kicked",
        ]
    );

    // Shutdown: Dave's socket is closed by the server, and his leave is still sent.
    let _dave = dave;
    server.stop().await;
    let mut rest = Vec::new();
    while rest.len() < 2 {
        rest.push(hooks.next().await);
    }
    assert_eq!(
        briefs(&rest),
        [
            "member.left arena dave shutdown",
            "room.vacated arena dave shutdown"
        ]
    );
}

#[tokio::test]
async fn a_silent_socket_expires_with_reason_ttl() {
    let mut hooks = Receiver::start().await;
    let mut s = with_hooks(&hooks.url, "member.joined,member.left");
    s.presence_ttl_ms = 300;
    let server = spawn(s).await;
    // Joins and never sends a heartbeat: the reaper expires it while the socket stays open.
    let _eve = join(&server, "quiet", "eve").await;
    let joined = hooks.next().await;
    assert_eq!(webhook_support::brief(&joined), "member.joined quiet eve");
    let left = hooks.next().await;
    assert_eq!(webhook_support::brief(&left), "member.left quiet eve ttl");
    assert_eq!(left["data"]["count"], 0);
    server.stop().await;
}

#[tokio::test]
async fn socketio_members_give_the_same_events() {
    let mut hooks = Receiver::start().await;
    let server = spawn(with_hooks(&hooks.url, "*")).await;
    let mut sio = Eio::open(&server, WEBSOCKET).await.expect("socket.io");
    sio.connect().await;
    sio.join("sio-room", "frank").await;
    let mut tab = Eio::open(&server, WEBSOCKET).await.expect("socket.io");
    tab.connect().await;
    tab.join("sio-room", "frank").await;
    sio.ws.close().await;
    tab.ws.close().await;
    let events = barrier(&server, &mut hooks, "s").await;
    assert_eq!(
        briefs(&events),
        [
            "room.occupied sio-room frank",
            "member.joined sio-room frank",
            "member.left sio-room frank leave",
            "room.vacated sio-room frank leave",
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn filters_choose_types_and_rooms() {
    let mut hooks = Receiver::start().await;
    let mut s = with_hooks(&hooks.url, "member.joined, user.offline");
    s.webhook_rooms = "game-*,barrier-*".into();
    let server = spawn(s).await;
    let a = join(&server, "game-1", "gina").await;
    let b = join(&server, "chat", "gina").await;
    a.close().await;
    b.close().await;
    // An online login: user.online is filtered out.
    let (status, _) = server
        .post("/api/online/login", &[], r#"{"playerId":"p1"}"#)
        .await;
    assert_eq!(status, 200);
    let c = join(&server, "barrier-f", "f").await;
    let mut seen = Vec::new();
    loop {
        let e = hooks.next().await;
        if e["room"] == "barrier-f" {
            break;
        }
        seen.push(e);
    }
    assert_eq!(briefs(&seen), ["member.joined game-1 gina"]);
    c.close().await;

    // Invalid filters refuse to start.
    for (events, rooms) in [("member.join", "*"), ("", "*"), ("*", " , ")] {
        let mut s = settings();
        s.webhook_events = events.into();
        s.webhook_rooms = rooms.into();
        assert!(s.validate().is_err(), "{events:?} {rooms:?}");
    }
    let mut s = settings();
    s.webhook_batch_max = 0;
    assert!(s.validate().is_err());
    assert!(settings().validate().is_ok());
    server.stop().await;
}

#[tokio::test]
async fn a_burst_behind_a_stalled_receiver_goes_out_in_bounded_batches() {
    const BATCH_MAX: usize = 5;
    const MEMBERS: usize = 23;
    let mut hooks = Receiver::start_with(true).await;
    let mut s = with_hooks(&hooks.url, "room.occupied,member.joined");
    s.webhook_batch_max = BATCH_MAX;
    let server = spawn(s).await;
    // The first event goes out alone and is held; the others pile up behind it.
    let mut sockets = Vec::new();
    for i in 0..MEMBERS {
        sockets.push(join(&server, "burst", &format!("m{i:02}")).await);
    }
    hooks.release();
    let mut events = Vec::new();
    while events.len() < MEMBERS + 1 {
        events.push(hooks.next().await);
    }
    let mut want = vec!["room.occupied burst m00".to_owned()];
    want.extend((0..MEMBERS).map(|i| format!("member.joined burst m{i:02}")));
    assert_eq!(briefs(&events), want, "every event once, in order");
    let sizes: Vec<usize> = hooks.deliveries.iter().map(|d| d.2).collect();
    assert!(
        sizes.iter().all(|&n| (1..=BATCH_MAX).contains(&n)),
        "{sizes:?}"
    );
    assert_eq!(sizes.iter().sum::<usize>(), MEMBERS + 1);
    assert!(
        sizes.contains(&BATCH_MAX),
        "events piled up into full batches: {sizes:?}"
    );
    let mut ids: Vec<&str> = hooks.deliveries.iter().map(|d| d.1.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        hooks.deliveries.len(),
        "one delivery id per batch"
    );
    let metrics = server.get_text("/metrics").await.1;
    assert!(
        metrics.contains("activenow_webhooks_dropped_total 0"),
        "{metrics}"
    );
    drop(sockets);
    server.stop().await;
}

/// A page reload within `PRESENCE_LEAVE_GRACE_MS` (the socket drops, the same identity
/// connects again) sends no webhook at all: no member.left, no second member.joined, no
/// room.vacated / room.occupied pair.
#[tokio::test]
async fn a_reload_within_the_leave_grace_sends_no_webhook() {
    let mut hooks = Receiver::start().await;
    let mut s = with_hooks(&hooks.url, "*");
    s.presence_leave_grace_ms = 60_000;
    let server = spawn(s).await;
    let alice = join(&server, "reload", "alice").await;
    alice.close().await;
    // The reloaded page: the identity never left, so the hello counts it and no join follows.
    let mut again = server
        .ws("/v1/ws?room=reload&socket_session_id=alice")
        .await;
    assert_eq!(again.expect_type("hello").await["count"], 1);
    // A barrier that stays open (a closed one would linger for the grace too).
    let _bob = join(&server, "reload-barrier", "bob").await;
    let events = hooks.until_joined("reload-barrier", "bob").await;
    assert_eq!(
        briefs(&events),
        ["room.occupied reload alice", "member.joined reload alice"]
    );
    again.close().await;
}
