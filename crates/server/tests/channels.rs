//! Channels (seed 2, SPEC §6) through real WebSocket and HTTP clients on loopback, with
//! tokens minted by the server's own code (and, for refusals, by the jsonwebtoken crate).

mod common;

use std::time::Duration;

use activenow::protocol::channels::mint;
use activenow::Settings;
use common::{settings, spawn, Client, Ended, TestServer, WAIT};
use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "test-secret-for-channels-0123456789";

fn channel_settings() -> Settings {
    let mut s = settings();
    s.jwt_secret = SECRET.into();
    s
}

fn now_secs() -> u64 {
    activenow_engine::clock::now_ms() / 1000
}

fn token(user: &str) -> String {
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

fn sign(alg: Algorithm, claims: Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(&Header::new(alg), &claims, key).unwrap()
}

fn hs256(claims: Value, secret: &str) -> String {
    sign(
        Algorithm::HS256,
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
}

async fn connect(server: &TestServer, user: &str) -> Client {
    server.ws(&format!("/ws?token={}", token(user))).await
}

async fn subscribe(c: &mut Client, channel: &str) -> Value {
    c.send_json(json!({"type": "subscribe", "channel": channel, "event": "signal:all"}))
        .await;
    c.next_json().await
}

/// The error code of the next message, which must be an error.
async fn error_code(c: &mut Client) -> String {
    let v = c.expect_type("error").await;
    assert!(v["error"]["message"].is_string(), "{v}");
    v["error"]["code"].as_str().unwrap().to_owned()
}

/// A plain GET (no upgrade) sees the same 401 as a WebSocket client, with its JSON reason.
async fn refusal(server: &TestServer, path: &str) -> (u16, String) {
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

#[tokio::test]
async fn subscribe_publish_unsubscribe_as_the_spec_lists() {
    let server = spawn(channel_settings()).await;
    let mut a = connect(&server, "alice").await;
    let mut b = connect(&server, "bob").await;
    assert_eq!(
        subscribe(&mut a, "lobby").await,
        json!({"type":"subscribed","channel":"lobby","data":{"status":"success","room":"lobby","event":"signal:all"}})
    );
    assert_eq!(subscribe(&mut b, "lobby").await["type"], "subscribed");

    a.send_json(
        json!({"type":"publish","channel":"lobby","event":"signal:all",
                       "data":{"type":"discover","from":"forged","userType":"desktop"}}),
    )
    .await;
    let msg = b.expect_type("message").await;
    let ts = msg["timestamp"].as_u64().unwrap();
    assert!(ts > 1_600_000_000_000, "timestamp in ms: {ts}");
    assert_eq!(
        msg,
        json!({"type":"message","channel":"lobby","event":"signal:all",
               "data":{"type":"discover","from":"alice","userType":"desktop"},"timestamp":ts})
    );
    // The publisher does not get its own message: its next frame is the next reply.
    assert_eq!(subscribe(&mut a, "second").await["type"], "subscribed");

    b.send_json(json!({"type":"unsubscribe","channel":"lobby"}))
        .await;
    assert_eq!(
        b.next_json().await,
        json!({"type":"unsubscribed","channel":"lobby","data":{"status":"success","room":"lobby","event":"signal:all"}})
    );
    a.send_json(json!({"type":"publish","channel":"lobby","event":"x","data":{}}))
        .await;
    // Nothing reaches bob any more: his next frame answers his next message.
    b.send_json(json!({"type":"publish","channel":"lobby","data":{}}))
        .await;
    assert_eq!(error_code(&mut b).await, "NOT_SUBSCRIBED");
    a.close().await;
    b.close().await;
    server.stop().await;
}

#[tokio::test]
async fn every_refusal_is_a_401_before_the_upgrade() {
    let server = spawn(channel_settings()).await;
    let exp = now_secs() + 3600;
    let cases = [
        ("/ws".to_owned(), "token_missing"),
        ("/ws?token=".to_owned(), "token_missing"),
        ("/ws?token=garbage".to_owned(), "token_invalid"),
        (
            format!("/ws?token={}", hs256(json!({"sub":"u","exp":exp}), "wrong")),
            "token_invalid",
        ),
        (
            format!(
                "/ws?token={}",
                hs256(json!({"sub":"u","exp":now_secs() - 3600}), SECRET)
            ),
            "token_expired",
        ),
        (
            format!(
                "/ws?token={}",
                sign(
                    Algorithm::HS512,
                    json!({"sub":"u","exp":exp}),
                    &EncodingKey::from_secret(SECRET.as_bytes())
                )
            ),
            "token_algorithm",
        ),
        (
            "/ws?token=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0.".to_owned(),
            "token_algorithm",
        ),
        (
            format!(
                "/ws?token={}",
                hs256(json!({"user_type":"desktop","exp":exp}), SECRET)
            ),
            "token_missing_subject",
        ),
    ];
    for (path, code) in &cases {
        assert_eq!(
            refusal(&server, path).await,
            (401, (*code).to_owned()),
            "{path}"
        );
        assert_eq!(server.try_ws(path, &[]).await.err(), Some(401), "{path}");
    }
    // user_id (seed 2's claim) is a subject, and a token without exp is accepted.
    let t = hs256(json!({"user_id":"u2"}), SECRET);
    let mut c = server.ws(&format!("/ws?token={t}")).await;
    assert_eq!(subscribe(&mut c, "ab").await["type"], "subscribed");
    c.close().await;
    server.stop().await;
}

#[tokio::test]
async fn without_a_secret_the_endpoint_refuses_everyone() {
    let server = spawn(settings()).await;
    let t = token("alice");
    assert_eq!(
        refusal(&server, &format!("/ws?token={t}")).await,
        (401, "auth_not_configured".into())
    );
    assert_eq!(refusal(&server, "/ws").await.0, 401);
    assert_eq!(
        server.try_ws(&format!("/ws?token={t}"), &[]).await.err(),
        Some(401)
    );
    server.stop().await;
}

#[tokio::test]
async fn token_from_bearer_header_or_subprotocol() {
    let server = spawn(channel_settings()).await;
    let t = token("alice");
    let bearer = format!("Bearer {t}");
    let mut c = server
        .try_ws("/ws", &[("authorization", &bearer)])
        .await
        .unwrap();
    assert_eq!(subscribe(&mut c, "ab").await["type"], "subscribed");
    c.close().await;

    for (offered, selected) in [(t.clone(), t.clone()), (format!("jwt, {t}"), "jwt".into())] {
        let mut req = server.ws_url("/ws").into_client_request().unwrap();
        req.headers_mut()
            .insert("sec-websocket-protocol", offered.parse().unwrap());
        let (stream, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
        assert_eq!(
            resp.headers()["sec-websocket-protocol"].to_str().unwrap(),
            selected
        );
        let mut c = Client { stream };
        assert_eq!(subscribe(&mut c, "ab").await["type"], "subscribed");
        c.close().await;
    }
    server.stop().await;
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn rs256_and_es256_with_a_public_key() {
    let exp = now_secs() + 60;
    for (alg, private, public) in [
        (
            Algorithm::RS256,
            "jwt-test-rsa.key.pem",
            "jwt-test-rsa.pub.pem",
        ),
        (
            Algorithm::ES256,
            "jwt-test-ec.key.pem",
            "jwt-test-ec.pub.pem",
        ),
    ] {
        let mut s = settings();
        s.jwt_public_key_file = fixture(public);
        let server = spawn(s).await;
        let pem = std::fs::read(fixture(private)).unwrap();
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem).unwrap(),
            _ => EncodingKey::from_ec_pem(&pem).unwrap(),
        };
        let t = sign(alg, json!({"sub":"carol","exp":exp}), &key);
        let mut c = server.ws(&format!("/ws?token={t}")).await;
        assert_eq!(subscribe(&mut c, "ab").await["type"], "subscribed");
        c.close().await;
        // HS256 is not accepted without a secret, not even signed with the public key's
        // bytes (algorithm confusion).
        let public_pem = std::fs::read_to_string(fixture(public)).unwrap();
        let confused = hs256(json!({"sub":"mallory","exp":exp}), &public_pem);
        assert_eq!(
            refusal(&server, &format!("/ws?token={confused}")).await,
            (401, "token_algorithm".into())
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn the_51st_subscriber_gets_room_full_by_default() {
    let server = spawn(channel_settings()).await;
    let mut clients = Vec::new();
    for i in 0..50 {
        let mut c = connect(&server, &format!("user{i}")).await;
        assert_eq!(subscribe(&mut c, "full room").await["type"], "subscribed");
        clients.push(c);
    }
    let mut late = connect(&server, "user50").await;
    late.send_json(json!({"type":"subscribe","channel":"full room"}))
        .await;
    assert_eq!(error_code(&mut late).await, "ROOM_FULL");
    // A second socket of a present user is not a new subscriber.
    let mut tab = connect(&server, "user0").await;
    assert_eq!(subscribe(&mut tab, "full room").await["type"], "subscribed");
    // When one leaves, the late one gets in.
    clients.pop().unwrap().close().await;
    assert_eq!(
        subscribe(&mut late, "full room").await["type"],
        "subscribed"
    );
    let (_, rooms) = server.get("/v1/activity/rooms").await;
    assert_eq!(rooms["room_count"]["full room"], 50);
    server.stop().await;
}

#[tokio::test]
async fn max_room_users_and_channel_max_users_set_the_limit() {
    let mut s = channel_settings();
    s.max_room_users = 2;
    let server = spawn(s).await;
    let mut a = connect(&server, "a").await;
    let mut b = connect(&server, "b").await;
    let mut c = connect(&server, "c").await;
    assert_eq!(subscribe(&mut a, "ab").await["type"], "subscribed");
    assert_eq!(subscribe(&mut b, "ab").await["type"], "subscribed");
    c.send_json(json!({"type":"subscribe","channel":"ab"}))
        .await;
    assert_eq!(error_code(&mut c).await, "ROOM_FULL");
    server.stop().await;

    let mut s = channel_settings();
    s.max_room_users = 2;
    s.channel_max_users = "0".parse().unwrap();
    let server = spawn(s).await;
    let mut held = Vec::new();
    for user in ["a", "b", "c"] {
        let mut x = connect(&server, user).await;
        assert_eq!(subscribe(&mut x, "ab").await["type"], "subscribed");
        held.push(x);
    }
    server.stop().await;
}

#[tokio::test]
async fn channel_names_follow_the_seed_rule() {
    let server = spawn(channel_settings()).await;
    let mut c = connect(&server, "alice").await;
    for ok in ["中文房间", "Room 42", "a_b-c", "123456789012"] {
        assert_eq!(subscribe(&mut c, ok).await["type"], "subscribed", "{ok}");
    }
    for bad in [
        "a",
        "1234567890123",
        "bad!name",
        "a/b",
        "emoji😀",
        "tab\tx",
        "",
    ] {
        c.send_json(json!({"type":"subscribe","channel":bad})).await;
        assert_eq!(error_code(&mut c).await, "INVALID_CHANNEL", "{bad:?}");
        c.send_json(json!({"type":"publish","channel":bad,"data":{}}))
            .await;
        assert_eq!(error_code(&mut c).await, "INVALID_CHANNEL", "{bad:?}");
    }
    c.close().await;
    server.stop().await;
}

#[tokio::test]
async fn bad_messages_get_errors_and_keep_the_socket() {
    let server = spawn(channel_settings()).await;
    let mut c = connect(&server, "alice").await;
    for bad in [
        "not json",
        "[1,2]",
        r#"{"type":"dance","channel":"ab"}"#,
        r#"{"channel":"ab"}"#,
        r#"{"type":"subscribe"}"#,
        r#"{"type":"subscribe","channel":5}"#,
    ] {
        c.send_text(bad).await;
        assert_eq!(error_code(&mut c).await, "BAD_MESSAGE", "{bad}");
    }
    c.stream
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(error_code(&mut c).await, "BAD_MESSAGE");
    c.send_json(json!({"type":"publish","channel":"ab","data":{}}))
        .await;
    assert_eq!(error_code(&mut c).await, "NOT_SUBSCRIBED");
    c.send_json(json!({"type":"unsubscribe","channel":"ab"}))
        .await;
    assert_eq!(error_code(&mut c).await, "NOT_SUBSCRIBED");
    assert_eq!(subscribe(&mut c, "ab").await["type"], "subscribed");
    for data in [json!(null), json!([1]), json!("text")] {
        c.send_json(json!({"type":"publish","channel":"ab","data":data}))
            .await;
        assert_eq!(error_code(&mut c).await, "BAD_MESSAGE", "{data}");
    }
    c.send_json(json!({"type":"publish","channel":"ab"})).await;
    assert_eq!(error_code(&mut c).await, "BAD_MESSAGE");
    c.close().await;
    server.stop().await;
}

#[tokio::test]
async fn payload_limit_rate_limit_and_subscription_limit() {
    let mut s = channel_settings();
    s.channel_max_payload_bytes = 64;
    s.channel_publish_rate = 1;
    s.channel_max_subscriptions = 2;
    s.max_messages_per_second = 1000;
    let server = spawn(s).await;
    let mut a = connect(&server, "alice").await;
    let mut b = connect(&server, "bob").await;
    assert_eq!(subscribe(&mut a, "ab").await["type"], "subscribed");
    assert_eq!(subscribe(&mut b, "ab").await["type"], "subscribed");

    a.send_json(json!({"type":"publish","channel":"ab","data":{"blob":"x".repeat(100)}}))
        .await;
    assert_eq!(error_code(&mut a).await, "TOO_LARGE");
    a.send_json(json!({"type":"publish","channel":"ab","data":{"n":1}}))
        .await;
    assert_eq!(b.expect_type("message").await["data"]["n"], 1);

    // One publish per second with bursts of two: the burst is spent (the oversized
    // publish counted too), so a flood is refused at once.
    for n in 0..5 {
        a.send_json(json!({"type":"publish","channel":"ab","data":{"n":n}}))
            .await;
    }
    assert_eq!(a.until_type("error").await["error"]["code"], "RATE_LIMITED");

    assert_eq!(subscribe(&mut a, "cd").await["type"], "subscribed");
    a.send_json(json!({"type":"subscribe","channel":"ef"}))
        .await;
    assert_eq!(error_code(&mut a).await, "TOO_MANY_SUBSCRIPTIONS");
    // Subscribing again to a channel already held is not a new subscription.
    a.send_json(json!({"type":"subscribe","channel":"cd","event":"other"}))
        .await;
    assert_eq!(a.until_type("subscribed").await["data"]["event"], "other");
    a.close().await;
    b.close().await;
    server.stop().await;
}

#[tokio::test]
async fn subscriptions_are_presence_in_the_engine() {
    let server = spawn(channel_settings()).await;
    let mut a = connect(&server, "alice").await;
    let mut a2 = connect(&server, "alice").await;
    let mut b = connect(&server, "bob").await;
    for c in [&mut a, &mut a2, &mut b] {
        assert_eq!(subscribe(c, "presence").await["type"], "subscribed");
    }
    let (_, rooms) = server.get("/v1/activity/rooms").await;
    assert_eq!(rooms["room_count"]["presence"], 2, "identities count once");
    let (_, members) = server.get("/v1/activity/presence?room_name=presence").await;
    let mut ids: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["identity"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids, ["alice", "bob"]);
    let (_, metrics) = server.get_text("/metrics").await;
    assert!(metrics.contains("activenow_connections 3"), "{metrics}");

    // A room socket in the same room sees the channel subscriber's presence.
    let mut room = server
        .ws("/v1/ws?room=presence&socket_session_id=carol")
        .await;
    assert_eq!(room.expect_type("hello").await["count"], 3);
    // A second tab of alice publishing reaches the first one (only the socket is excluded).
    a2.send_json(json!({"type":"publish","channel":"presence","data":{"hi":1}}))
        .await;
    assert_eq!(a.expect_type("message").await["data"]["from"], "alice");
    assert_eq!(b.expect_type("message").await["data"]["from"], "alice");

    b.close().await;
    let leave = room.until_type("ACTIVITY_LEAVE_PRESENCE").await;
    assert_eq!(leave["data"]["identity"], "bob");
    a.close().await;
    a2.close().await;
    room.close().await;
    let (_, rooms) = server.get("/v1/activity/rooms").await;
    assert_eq!(rooms["rooms"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn server_pings_and_closes_silent_sockets() {
    let mut s = channel_settings();
    s.channel_ping_interval = 1;
    s.channel_idle_timeout = 0;
    let server = spawn(s).await;
    let mut c = connect(&server, "alice").await;
    let ping = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(Ok(Message::Ping(_))) = c.stream.next().await {
                return;
            }
        }
    })
    .await;
    assert!(ping.is_ok(), "no ping within the wait");
    c.close().await;
    server.stop().await;

    let mut s = channel_settings();
    s.channel_ping_interval = 0;
    s.channel_idle_timeout = 1;
    let server = spawn(s).await;
    let mut c = connect(&server, "alice").await;
    assert_eq!(subscribe(&mut c, "ab").await["type"], "subscribed");
    assert_eq!(c.ended().await, Ended::Closed(Some(1001)));
    let (_, rooms) = server.get("/v1/activity/rooms").await;
    assert_eq!(rooms["rooms"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_channel_sockets_with_1012() {
    let server = spawn(channel_settings()).await;
    let mut c = connect(&server, "alice").await;
    assert_eq!(subscribe(&mut c, "ab").await["type"], "subscribed");
    let engine = server.state().engine.clone();
    server.stop().await;
    assert_eq!(c.ended().await, Ended::Closed(Some(1012)));
    assert_eq!(engine.room_counts().await.unwrap(), vec![]);
}

#[tokio::test]
async fn origins_and_cors_follow_allowed_origins() {
    let mut s = channel_settings();
    s.allowed_origins = "https://app.example".into();
    let server = spawn(s).await;
    let t = token("alice");
    let path = format!("/ws?token={t}");
    assert_eq!(
        server
            .try_ws(&path, &[("origin", "https://evil.example")])
            .await
            .err(),
        Some(403)
    );
    let mut c = server
        .try_ws(&path, &[("origin", "https://app.example")])
        .await
        .unwrap();
    assert_eq!(subscribe(&mut c, "ab").await["type"], "subscribed");
    c.close().await;

    let http = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        http.request(reqwest::Method::OPTIONS, server.url("/v1/activity/rooms"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
    };
    let allowed = preflight("https://app.example").await.unwrap();
    assert!(allowed.status().is_success());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let methods = allowed.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(methods.contains("GET"), "{methods}");
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    let get = http
        .get(server.url("/v1/activity/rooms"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        get.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    server.stop().await;
}

#[tokio::test]
async fn serve_refuses_to_start_with_an_unusable_key() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_activenow"))
        .env("JWT_PUBLIC_KEY_FILE", "/nonexistent/key.pem")
        .env("BIND", "127.0.0.1")
        .env("PORT", "0")
        .env_remove("ACTIVENOW_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("activenow kept running with an unreadable key")
        .unwrap();
    assert!(!status.success());
}

#[tokio::test]
async fn the_token_subcommand_mints_accepted_tokens() {
    let bin = env!("CARGO_BIN_EXE_activenow");
    let out = std::process::Command::new(bin)
        .args([
            "token", "--user", "dave", "--type", "mobile", "--room", "r9", "--ttl", "1h",
        ])
        .env("JWT_SECRET", SECRET)
        .env_remove("ACTIVENOW_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let server = spawn(channel_settings()).await;
    let mut d = server.ws(&format!("/ws?token={t}")).await;
    let mut e = connect(&server, "erin").await;
    assert_eq!(subscribe(&mut d, "ab").await["type"], "subscribed");
    assert_eq!(subscribe(&mut e, "ab").await["type"], "subscribed");
    d.send_json(json!({"type":"publish","channel":"ab","data":{}}))
        .await;
    assert_eq!(e.expect_type("message").await["data"]["from"], "dave");
    d.close().await;
    e.close().await;
    server.stop().await;

    let out = std::process::Command::new(bin)
        .args(["token", "--user", "dave"])
        .env_remove("JWT_SECRET")
        .env_remove("ACTIVENOW_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("JWT_SECRET is not set"));
}
