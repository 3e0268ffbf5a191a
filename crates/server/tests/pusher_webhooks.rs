//! Pusher-style webhooks through the Pusher protocol over real sockets, to a receiver that
//! verifies `X-Pusher-Key` and `X-Pusher-Signature` (hex HMAC-SHA256 of the raw body under
//! the app secret, as the `pusher` SDK's `webhook()` helper does): `channel_occupied`,
//! `member_added` once per user (not per tab), `member_removed`, `channel_vacated`, for
//! presence and public channels; `subscription_count` for an app that counts subscriptions;
//! `cache_miss`; `client_event`.

mod common;
mod pusher_hook_support;

use common::{pusher, settings, spawn, Client, TestServer};
use pusher_hook_support::{receiver, KEY, SECRET};
use serde_json::json;

const APP: pusher::App = pusher::App {
    key: KEY,
    secret: SECRET,
};

/// A server whose one Pusher app sends its webhooks to `url`.
async fn hook_server(url: String) -> TestServer {
    spawn(activenow::Settings {
        pusher_app_id: "hooks".into(),
        pusher_app_key: KEY.into(),
        pusher_app_secret: SECRET.into(),
        pusher_app_webhook_url: url,
        ..settings()
    })
    .await
}

async fn connect(server: &TestServer) -> (Client, String) {
    pusher::established(
        server
            .ws(&format!("/app/{KEY}?protocol=7&client=js&version=8.6.0"))
            .await,
    )
    .await
}

async fn subscribe(c: &mut Client, sid: &str, channel: &str, user: Option<&str>) {
    pusher::subscribe(APP, c, sid, channel, user).await
}

#[tokio::test]
async fn presence_and_public_channels_send_pushers_webhooks() {
    let (url, mut hooks) = receiver().await;
    let server = hook_server(url).await;

    let (mut alice, sid) = connect(&server).await;
    subscribe(&mut alice, &sid, "presence-room", Some("alice")).await;
    let (mut alice_tab, sid) = connect(&server).await;
    subscribe(&mut alice_tab, &sid, "presence-room", Some("alice")).await;
    let (mut bob, sid) = connect(&server).await;
    subscribe(&mut bob, &sid, "presence-room", Some("bob")).await;
    subscribe(&mut bob, &sid, "news", None).await;
    assert_eq!(
        hooks.take(4).await,
        [
            "channel_occupied presence-room",
            "member_added presence-room alice",
            "member_added presence-room bob",
            "channel_occupied news",
        ]
    );
    // Alice's first tab goes: nothing; her last: member_removed. Bob unsubscribes, closes.
    alice.close().await;
    alice_tab.close().await;
    bob.send_json(json!({"event": "pusher:unsubscribe", "data": {"channel": "presence-room"}}))
        .await;
    bob.close().await;
    assert_eq!(
        hooks.take(4).await,
        [
            "member_removed presence-room alice",
            "member_removed presence-room bob",
            "channel_vacated presence-room",
            "channel_vacated news",
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn subscription_counts_and_cache_misses_send_their_webhooks() {
    let (url, mut hooks) = receiver().await;
    let server = spawn(activenow::Settings {
        pusher_app_id: "hooks".into(),
        pusher_app_key: KEY.into(),
        pusher_app_secret: SECRET.into(),
        pusher_app_webhook_url: url,
        pusher_subscription_count_events: true,
        ..settings()
    })
    .await;
    // Two sockets on a public channel: every change of its subscription count.
    let (mut a, sid_a) = connect(&server).await;
    subscribe(&mut a, &sid_a, "news", None).await;
    let (mut b, sid_b) = connect(&server).await;
    subscribe(&mut b, &sid_b, "news", None).await;
    assert_eq!(
        hooks.take(3).await,
        [
            "channel_occupied news",
            "subscription_count news 1",
            "subscription_count news 2",
        ]
    );
    // A presence channel counts users: no subscription_count for it.
    subscribe(&mut a, &sid_a, "presence-room", Some("alice")).await;
    assert_eq!(
        hooks.take(2).await,
        [
            "channel_occupied presence-room",
            "member_added presence-room alice"
        ]
    );
    // A cache channel without a kept event: the subscriber gets pusher:cache_miss, the app
    // its cache_miss webhook (the subscription's own events come first: the miss is told
    // once the subscription succeeded).
    b.send_json(json!({"event": "pusher:subscribe", "data": {"channel": "cache-scores"}}))
        .await;
    b.until(|v| v["event"] == "pusher:cache_miss").await;
    assert_eq!(
        hooks.take(3).await,
        [
            "channel_occupied cache-scores",
            "subscription_count cache-scores 1",
            "cache_miss cache-scores",
        ]
    );
    // Its socket closes: both channels lose it, in an order of the socket's (sorted here).
    b.close().await;
    let mut gone = hooks.take(3).await;
    gone.sort();
    assert_eq!(
        gone,
        [
            "channel_vacated cache-scores",
            "subscription_count cache-scores 0",
            "subscription_count news 1",
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn an_accepted_client_event_sends_one_client_event_webhook() {
    let (url, mut hooks) = receiver().await;
    let server = hook_server(url).await;
    let (mut alice, sid_alice) = connect(&server).await;
    subscribe(&mut alice, &sid_alice, "presence-room", Some("alice")).await;
    let (mut bob, sid) = connect(&server).await;
    subscribe(&mut bob, &sid, "presence-room", Some("bob")).await;
    assert_eq!(hooks.take(3).await.len(), 3);
    alice
        .send_json(
            json!({"event": "client-typing", "channel": "presence-room", "data": {"on": true}}),
        )
        .await;
    bob.until(|v| v["event"] == "client-typing").await;
    // A refused one (not subscribed) sends nothing.
    alice
        .send_json(json!({"event": "client-x", "channel": "presence-other", "data": {}}))
        .await;
    alice.until(|v| v["event"] == "pusher:error").await;
    assert_eq!(
        hooks.next_event().await,
        json!({
            "name": "client_event",
            "channel": "presence-room",
            "event": "client-typing",
            "data": "{\"on\":true}",
            "socket_id": sid_alice,
            "user_id": "alice",
        })
    );
    // The next webhook is the next thing that happened: no client_event for the refused one.
    bob.close().await;
    assert_eq!(hooks.next().await, "member_removed presence-room bob");
    alice.close().await;
    server.stop().await;
}

#[test]
fn a_webhook_url_must_be_http() {
    let s = activenow::Settings {
        pusher_app_id: "hooks".into(),
        pusher_app_key: KEY.into(),
        pusher_app_secret: SECRET.into(),
        pusher_app_webhook_url: "ftp://nope".into(),
        ..settings()
    };
    assert!(s.validate().is_err());
}
