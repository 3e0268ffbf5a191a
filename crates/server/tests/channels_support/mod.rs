//! Helpers of the channels test files: settings with a secret, tokens, and the common
//! client steps.
#![allow(dead_code)]

use std::time::Duration;

use activenow::protocol::channels::codec::room_of;
use activenow::protocol::channels::mint;
use activenow::Settings;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::common::{settings, Client, TestServer};

pub const SECRET: &str = "test-secret-for-channels-0123456789";

pub fn channel_settings() -> Settings {
    let mut s = settings();
    s.jwt_secret = SECRET.into();
    s
}

pub fn now_secs() -> u64 {
    activenow_engine::clock::now_ms() / 1000
}

pub fn token(user: &str) -> String {
    mint(
        SECRET,
        user,
        Some("desktop"),
        Some("r1"),
        Duration::from_secs(3600),
        activenow_engine::clock::now_ms(),
    )
    .unwrap()
}

pub fn sign(alg: Algorithm, claims: Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(&Header::new(alg), &claims, key).unwrap()
}

pub fn hs256(claims: Value, secret: &str) -> String {
    sign(
        Algorithm::HS256,
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
}

/// Subscribers of a channel, as the engine counts them (channel rooms are internal rooms).
pub async fn channel_count(server: &TestServer, channel: &str) -> u64 {
    server
        .state()
        .engine
        .count(&room_of(channel))
        .await
        .unwrap()
}

pub async fn connect(server: &TestServer, user: &str) -> Client {
    server.ws(&format!("/ws?token={}", token(user))).await
}

pub async fn subscribe(c: &mut Client, channel: &str) -> Value {
    c.send_json(json!({"type": "subscribe", "channel": channel, "event": "signal:all"}))
        .await;
    c.next_json().await
}

/// The error code of the next message, which must be an error.
pub async fn error_code(c: &mut Client) -> String {
    let v = c.expect_type("error").await;
    assert!(v["error"]["message"].is_string(), "{v}");
    v["error"]["code"].as_str().unwrap().to_owned()
}

/// A plain GET (no upgrade) sees the same 401 as a WebSocket client, with its JSON reason.
pub async fn refusal(server: &TestServer, path: &str) -> (u16, String) {
    let resp = reqwest::get(server.url(path)).await.unwrap();
    let status = resp.status().as_u16();
    if status == 401 {
        let challenge = resp.headers().get("www-authenticate").unwrap();
        assert!(challenge.to_str().unwrap().starts_with("Bearer"));
    }
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}
