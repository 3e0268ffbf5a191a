//! Channels authentication and the edges of `/ws`: every 401, token sources, public keys,
//! Origin and CORS, startup with a broken key, and `activenow token`.

mod channels_support;
mod common;

use channels_support::*;
use common::{settings, spawn, Client, WAIT};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

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
