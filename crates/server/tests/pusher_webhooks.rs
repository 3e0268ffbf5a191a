//! Pusher-style webhooks through the Pusher protocol over real sockets, to a receiver that
//! verifies `X-Pusher-Key` and `X-Pusher-Signature` (hex HMAC-SHA256 of the raw body under
//! the app secret, as the `pusher` SDK's `webhook()` helper does): `channel_occupied`,
//! `member_added` once per user (not per tab), `member_removed`, `channel_vacated`, for
//! presence and public channels.

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
