//! A Pusher client over the test harness's WebSocket: the socket id from
//! `pusher:connection_established`, and subscriptions signed as an app's auth endpoint would.

use activenow::protocol::pusher::auth::sign;
use serde_json::{json, Value};

use super::Client;

/// The app whose key and secret sign subscriptions.
#[derive(Clone, Copy)]
pub struct App {
    pub key: &'static str,
    pub secret: &'static str,
}

/// Waits for `pusher:connection_established` and returns the socket with its id.
pub async fn established(mut c: Client) -> (Client, String) {
    let v = c
        .until(|v| v["event"] == "pusher:connection_established")
        .await;
    let data: Value = serde_json::from_str(v["data"].as_str().unwrap()).unwrap();
    let sid = data["socket_id"].as_str().unwrap().to_owned();
    (c, sid)
}

/// Subscribes and waits for the success: a presence channel as `user`, a `private-` one
/// signed, a public one as is.
pub async fn subscribe(app: App, c: &mut Client, sid: &str, channel: &str, user: Option<&str>) {
    let data = if let Some(user) = user {
        let channel_data = json!({"user_id": user, "user_info": {}}).to_string();
        let sig = sign(app.secret, &format!("{sid}:{channel}:{channel_data}"));
        json!({"channel": channel, "auth": format!("{}:{sig}", app.key), "channel_data": channel_data})
    } else if channel.starts_with("private-") {
        let sig = sign(app.secret, &format!("{sid}:{channel}"));
        json!({"channel": channel, "auth": format!("{}:{sig}", app.key)})
    } else {
        json!({"channel": channel})
    };
    c.send_json(json!({"event": "pusher:subscribe", "data": data}))
        .await;
    c.until(|v| v["event"] == "pusher_internal:subscription_succeeded" && v["channel"] == channel)
        .await;
}
