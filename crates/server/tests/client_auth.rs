//! CLIENT_AUTH=jwt through real sockets and HTTP over loopback: impersonation refused on every
//! identity-claiming endpoint, the API key acting for anyone, private fields, token expiry
//! (4001) and refresh, `crit` headers, lossy percent-decoding, and channel places that no
//! unauthenticated endpoint can fill.

mod channels_support;
mod common;

use channels_support::{hs256, now_secs, SECRET};
use common::{settings, spawn, Ended, TestServer};
use serde_json::{json, Value};

const API_KEY: &str = "server-side-key";

fn jwt_settings() -> activenow::Settings {
    let mut s = settings();
    s.client_auth = "jwt".into();
    s.jwt_secret = SECRET.into();
    s.api_key = API_KEY.into();
    s.jwt_leeway = 0;
    s
}

/// A token for `user` that expires in `secs` seconds.
fn token_for(user: &str, secs: u64) -> String {
    hs256(json!({"sub": user, "exp": now_secs() + secs}), SECRET)
}

fn token(user: &str) -> String {
    token_for(user, 3600)
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

/// A plain GET's status and `error` code (the 401/403 comes before the upgrade).
async fn refused(server: &TestServer, path: &str) -> (u16, String) {
    let (status, body) = server.get(path).await;
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn room_and_visitor_sockets_take_the_identity_from_the_token() {
    let server = spawn(jwt_settings()).await;
    let t1 = token("u1");
    for path in ["/v1/ws?room=r", "/v1/ws/web", "/web"] {
        assert_eq!(
            refused(&server, path).await,
            (401, "token_missing".into()),
            "{path}"
        );
        let sep = if path.contains('?') { '&' } else { '?' };
        assert_eq!(
            refused(&server, &format!("{path}{sep}token=garbage")).await,
            (401, "token_invalid".into())
        );
        // Impersonation: a token for u1 naming u2.
        let as_u2 = format!("{path}{sep}token={t1}&socket_session_id=u2");
        assert_eq!(
            refused(&server, &as_u2).await,
            (403, "identity_mismatch".into()),
            "{path}"
        );
        assert_eq!(
            server
                .try_ws(
                    &format!("{path}{sep}token={t1}"),
                    &[("x-socket-session-id", "u2")]
                )
                .await
                .err(),
            Some(403)
        );
    }
    // The token's subject is the identity, whichever transport carries the token.
    let mut a = server.ws(&format!("/v1/ws?room=r&token={t1}")).await;
    assert_eq!(a.expect_type("hello").await["sid"], "u1");
    let mut b = server
        .try_ws("/v1/ws?room=r", &[("authorization", &bearer(&token("u2")))])
        .await
        .unwrap();
    assert_eq!(b.expect_type("hello").await["sid"], "u2");
    let t3 = token("u3");
    let mut c = server
        .try_ws(
            "/v1/ws?room=r&socket_session_id=u3",
            &[("sec-websocket-protocol", &format!("jwt, {t3}"))],
        )
        .await
        .unwrap();
    assert_eq!(c.expect_type("hello").await["sid"], "u3");
    // updateSid cannot move a proven socket to another identity.
    a.send_json(json!({"type":"updateSid","session_id":"u2"}))
        .await;
    assert_eq!(a.until_type("error").await["code"], "identity_mismatch");
    let (_, members) = server.get("/v1/activity/presence?room_name=r").await;
    let ids: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["identity"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["u1", "u2", "u3"]);
    for s in [a, b, c] {
        s.close().await;
    }
    server.stop().await;
}

#[tokio::test]
async fn presence_updates_only_as_oneself_or_with_the_api_key() {
    let server = spawn(jwt_settings()).await;
    let mut victim = server
        .ws(&format!("/v1/ws?room=r&token={}", token("victim")))
        .await;
    victim.expect_type("hello").await;
    let body = r#"{"room_name":"r","display_name":"fake"}"#;
    let update = "/v1/activity/presence/update";
    // No credentials, or a token of another identity: refused.
    let (status, _) = server
        .post(update, &[("x-socket-session-id", "victim")], body)
        .await;
    assert_eq!(status, 401);
    let attacker = bearer(&token("attacker"));
    let (status, v) = server
        .post(
            update,
            &[
                ("x-socket-session-id", "victim"),
                ("authorization", &attacker),
            ],
            body,
        )
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (403, Some("identity_mismatch"))
    );
    // The victim's own token (no header needed) and the server's key both work.
    let own = bearer(&token("victim"));
    let (status, v) = server
        .post(
            update,
            &[("authorization", &own)],
            r#"{"room_name":"r","display_name":"me"}"#,
        )
        .await;
    assert_eq!((status, v["identity"].as_str()), (200, Some("victim")));
    let ev = victim.until_type("ACTIVITY_UPDATE_PRESENCE").await;
    assert_eq!(ev["data"]["displayName"], "me");
    let key = bearer(API_KEY);
    let (status, _) = server
        .post(
            update,
            &[("x-socket-session-id", "victim"), ("authorization", &key)],
            r#"{"room_name":"r","display_name":"by server"}"#,
        )
        .await;
    assert_eq!(status, 200);
    let ev = victim.until_type("ACTIVITY_UPDATE_PRESENCE").await;
    assert_eq!(ev["data"]["displayName"], "by server");
    victim.close().await;
    server.stop().await;
}

#[tokio::test]
async fn online_players_cannot_log_out_or_read_each_other() {
    let server = spawn(jwt_settings()).await;
    let key = bearer(API_KEY);
    let u1 = bearer(&token("u1"));
    let login = |p: &str| format!(r#"{{"playerId":"{p}","ip":"10.0.0.{}"}}"#, p.len());
    // The game back end logs players in with the API key; a player's token logs in itself.
    let (status, _) = server
        .post(
            "/api/online/login",
            &[("authorization", &key)],
            &login("u22"),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = server
        .post("/api/online/login", &[("authorization", &u1)], &login("u1"))
        .await;
    assert_eq!(status, 200);
    let (status, _) = server.post("/api/online/login", &[], &login("u3")).await;
    assert_eq!(status, 401);
    // u1 can neither log out nor heartbeat nor log in as u22.
    for path in [
        "/api/online/logout",
        "/api/online/heartbeat",
        "/api/online/login",
    ] {
        let (status, v) = server
            .post(path, &[("authorization", &u1)], r#"{"playerId":"u22"}"#)
            .await;
        assert_eq!(status, 403, "{path}");
        assert!(v["error"]
            .as_str()
            .unwrap()
            .starts_with("identity_mismatch"));
    }
    let (_, rec) = server.get("/api/online/player/u22").await;
    assert_eq!(rec["status"], "online");
    assert!(rec.get("ip").is_none(), "{rec}");
    // Private fields: the owner and the server see the ip, nobody else.
    let get = |path: &str, auth: &str| {
        let req = reqwest::Client::new()
            .get(server.url(path))
            .header("authorization", auth.to_owned());
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    assert!(get("/api/online/player/u22", &u1).await.get("ip").is_none());
    assert_eq!(get("/api/online/player/u1", &u1).await["ip"], "10.0.0.2");
    assert_eq!(get("/api/online/player/u22", &key).await["ip"], "10.0.0.3");
    let list = get("/api/online/players", &u1).await;
    for p in list["players"].as_array().unwrap() {
        assert_eq!(p.get("ip").is_some(), p["playerId"] == "u1", "{p}");
    }
    let list = get("/api/online/players", &key).await;
    assert!(list["players"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["ip"].is_string()));
    // The ping socket: the token's player only.
    let t1 = token("u1");
    assert_eq!(
        refused(&server, &format!("/api/online/ws?playerId=u22&token={t1}")).await,
        (403, "identity_mismatch".into())
    );
    assert_eq!(
        refused(&server, "/api/online/ws?playerId=u1").await,
        (401, "token_missing".into())
    );
    let mut ping = server.ws(&format!("/api/online/ws?token={t1}")).await;
    ping.send_json(json!({"type":"ping"})).await;
    ping.expect_type("pong").await;
    // Logging oneself out is allowed and closes one's own ping socket.
    let (status, _) = server
        .post(
            "/api/online/logout",
            &[("authorization", &u1)],
            r#"{"playerId":"u1"}"#,
        )
        .await;
    assert_eq!(status, 200);
    assert!(matches!(
        ping.ended().await,
        Ended::Closed(_) | Ended::Dropped
    ));
    server.stop().await;
}

#[tokio::test]
async fn sockets_close_with_4001_at_expiry_unless_refreshed() {
    let server = spawn(jwt_settings()).await;
    // `a` expires first but refreshes; `b` expires a second later and does not.
    let mut a = server
        .ws(&format!("/v1/ws?room=r&token={}", token_for("a", 3)))
        .await;
    a.expect_type("hello").await;
    let mut b = server
        .ws(&format!("/v1/ws?room=r&token={}", token_for("b", 4)))
        .await;
    b.expect_type("hello").await;
    a.send_json(json!({"type":"refresh","token": token_for("b", 3600)}))
        .await;
    assert_eq!(a.until_type("error").await["code"], "identity_mismatch");
    a.send_json(json!({"type":"refresh","token":"garbage"}))
        .await;
    assert_eq!(a.until_type("error").await["code"], "token_invalid");
    a.send_json(json!({"type":"refresh","token": token_for("a", 3600)}))
        .await;
    let refreshed = a.until_type("refreshed").await;
    assert_eq!(refreshed["expiresAt"], (now_secs() + 3600) * 1000);
    assert_eq!(b.ended().await, Ended::Closed(Some(4001)));
    // `a`'s first token ran out a second before `b`'s: still open and answering.
    a.send_json(json!({"type":"nope"})).await;
    assert_eq!(a.until_type("error").await["code"], "unknown_type");
    a.close().await;

    // The other socket kinds expire the same way.
    for path in ["/v1/ws/web", "/api/online/ws"] {
        let mut s = server
            .ws(&format!("{path}?token={}", token_for("c", 3)))
            .await;
        assert_eq!(s.ended().await, Ended::Closed(Some(4001)), "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn channel_tokens_expire_on_open_sockets_in_both_modes() {
    let mut s = settings();
    s.jwt_secret = SECRET.into();
    s.jwt_leeway = 0;
    let server = spawn(s).await;
    let mut c = server.ws(&format!("/ws?token={}", token_for("u", 3))).await;
    c.send_json(json!({"type":"subscribe","channel":"ab"}))
        .await;
    assert_eq!(c.next_json().await["type"], "subscribed");
    assert_eq!(c.ended().await, Ended::Closed(Some(4001)));
    server.stop().await;
}

#[tokio::test]
async fn crit_headers_and_lossy_ids_are_refused() {
    use base64::Engine as _;
    let server = spawn(jwt_settings()).await;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let signed = format!(
        "{}.{}",
        b64(json!({"alg":"HS256","crit":["x-unknown"],"x-unknown":1})),
        b64(json!({"sub":"u","exp":now_secs() + 60}))
    );
    let sig = jsonwebtoken::crypto::sign(
        signed.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    let crit = format!("{signed}.{sig}");
    for path in [
        format!("/v1/ws?room=r&token={crit}"),
        format!("/ws?token={crit}"),
    ] {
        assert_eq!(refused(&server, &path).await, (401, "token_invalid".into()));
    }
    server.stop().await;

    // Both modes: %FF and %FE are not two spellings of U+FFFD.
    let server = spawn(settings()).await;
    for path in [
        "/v1/ws?room=r&socket_session_id=%FF",
        "/v1/ws?room=r&socket_session_id=%FE",
        "/api/online/ws?playerId=%FF",
        "/api/online/player/%FF",
        "/v1/ws/qr/%FE",
    ] {
        assert_eq!(
            refused(&server, path).await,
            (400, "bad_encoding".into()),
            "{path}"
        );
    }
    let mut ok = server.ws("/v1/ws?room=r&socket_session_id=%E4%B8%AD").await;
    assert_eq!(ok.expect_type("hello").await["sid"], "中");
    ok.close().await;
    server.stop().await;
}

#[tokio::test]
async fn room_sockets_cannot_take_channel_places() {
    let mut s = settings();
    s.jwt_secret = SECRET.into();
    s.channel_max_users = 1.into();
    let server = spawn(s).await;
    // Unauthenticated room sockets crowd a room of the channel's name...
    let mut crowd = Vec::new();
    for i in 0..3 {
        let mut c = server
            .ws(&format!("/v1/ws?room=ab&socket_session_id=squatter{i}"))
            .await;
        c.expect_type("hello").await;
        crowd.push(c);
    }
    // ...and the token holder still gets the channel's one place.
    let mut holder = server.ws(&format!("/ws?token={}", token("holder"))).await;
    holder
        .send_json(json!({"type":"subscribe","channel":"ab"}))
        .await;
    assert_eq!(holder.next_json().await["type"], "subscribed");
    let mut late = server.ws(&format!("/ws?token={}", token("late"))).await;
    late.send_json(json!({"type":"subscribe","channel":"ab"}))
        .await;
    assert_eq!(late.next_json().await["error"]["code"], "ROOM_FULL");
    for c in crowd {
        c.close().await;
    }
    server.stop().await;
}

#[tokio::test]
async fn off_mode_is_unchanged() {
    let mut s = settings();
    s.api_key = API_KEY.into();
    let server = spawn(s).await;
    let mut a = server.ws("/v1/ws?room=r&socket_session_id=x").await;
    assert_eq!(a.expect_type("hello").await["sid"], "x");
    let (status, _) = server
        .post(
            "/v1/activity/presence/update",
            &[("x-socket-session-id", "x")],
            r#"{"room_name":"r"}"#,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = server
        .post(
            "/api/online/login",
            &[],
            r#"{"playerId":"p","ip":"1.2.3.4"}"#,
        )
        .await;
    assert_eq!(status, 200);
    let (_, rec) = server.get("/api/online/player/p").await;
    assert_eq!(rec["ip"], "1.2.3.4");
    a.close().await;
    server.stop().await;
}
