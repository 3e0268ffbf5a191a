//! Caps of the unauthenticated HTTP objects, on the memory backend and on a real Redis
//! (docs/limits-http.md): HTTP online logins do not use MAX_CONNECTIONS; ONLINE_MAX_PLAYERS
//! and SESSION_MAX_ACTIVE are exact under concurrent creation and give their places back on
//! expiry; per-IP creation rates answer 429 with a JSON error, API_KEY callers exempt; the
//! online `ip` is the forwarded client only behind TRUSTED_PROXIES.

mod common;

use std::time::Duration;

use activenow::Settings;
use activenow_engine::Backend;
use activenow_testkit::RedisServer;
use common::{spawn_with, TestServer, WAIT};
use serde_json::json;

fn settings(f: impl FnOnce(&mut Settings)) -> Settings {
    let mut s = common::settings();
    // Caps, not rates, are under test unless a test sets a rate.
    s.online_logins_per_ip_per_second = 0;
    s.session_creates_per_ip_per_second = 0;
    f(&mut s);
    s
}

/// Memory, and Redis when a `redis-server` can be started (the harness fails under CI=true
/// without one and skips loudly elsewhere).
async fn backends(redis: &Option<RedisServer>, test: &str) -> Vec<Backend> {
    let mut out = vec![Backend::memory()];
    if let Some(redis) = redis {
        let mut options =
            activenow_redis::RedisOptions::new(&redis.url(), test, Duration::from_secs(60));
        options.prefix = format!("{test}:");
        out.push(activenow_redis::connect(&options).await.expect("redis"));
    }
    out
}

async fn login(server: &TestServer, player: &str) -> u16 {
    let body = json!({ "playerId": player }).to_string();
    server.post("/api/online/login", &[], &body).await.0
}

/// Runs `n` requests at once; the statuses, in any order.
async fn at_once<F, Fut>(n: usize, f: F) -> Vec<u16>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = u16> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(f(i))).collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|&&s| s == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_logins_do_not_use_max_connections_and_online_max_players_is_exact() {
    let redis = RedisServer::start();
    for backend in backends(&redis, "online-cap").await {
        let name = backend.name;
        let server = std::sync::Arc::new(
            spawn_with(
                settings(|s| {
                    s.max_connections = 50;
                    s.online_max_players = 50;
                }),
                backend,
            )
            .await,
        );
        let statuses = at_once(60, |i| {
            let server = server.clone();
            async move { login(&server, &format!("p{i}")).await }
        })
        .await;
        assert_eq!(count(&statuses, 200), 50, "{name}: {statuses:?}");
        assert_eq!(count(&statuses, 503), 10, "{name}: {statuses:?}");
        let (status, body) = server
            .post("/api/online/login", &[], r#"{"playerId":"late"}"#)
            .await;
        assert_eq!(status, 503, "{name}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("ONLINE_MAX_PLAYERS"),
            "{body}"
        );
        // Sockets still have all 50 places: logins are not sockets.
        let mut sockets = Vec::new();
        for _ in 0..50 {
            sockets.push(server.ws("/v1/ws/web").await);
        }
        assert_eq!(server.try_ws("/v1/ws/web", &[]).await.err(), Some(503));
        drop(sockets);
        // A player already online logs in again; one leaving makes room for another.
        let online: Vec<String> = server.get("/api/online/players?limit=100").await.1["players"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["playerId"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(online.len(), 50, "{name}");
        assert_eq!(login(&server, &online[0]).await, 200);
        let logout = json!({"playerId": online[1]}).to_string();
        assert_eq!(server.post("/api/online/logout", &[], &logout).await.0, 200);
        assert_eq!(login(&server, "late").await, 200, "{name}");
        assert_eq!(login(&server, "later").await, 503, "{name}");
        match std::sync::Arc::try_unwrap(server) {
            Ok(server) => server.stop().await,
            Err(_) => panic!("server still shared"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_players_give_their_places_back() {
    let redis = RedisServer::start();
    for backend in backends(&redis, "online-expiry").await {
        let name = backend.name;
        let server = spawn_with(
            settings(|s| {
                s.online_max_players = 3;
                // Long enough for the checks below on a loaded machine; short within WAIT.
                s.online_ttl_ms = 3000;
                s.presence_reaper_interval_ms = 50;
            }),
            backend,
        )
        .await;
        for p in ["a", "b", "c"] {
            assert_eq!(login(&server, p).await, 200, "{name}");
        }
        assert_eq!(login(&server, "d").await, 503, "{name}");
        // The ping socket logs in too: refused with a reason and 1013 (try again later).
        let mut ws = server.ws("/api/online/ws?playerId=d").await;
        assert_eq!(ws.next_json().await["code"], "server_full", "{name}");
        assert_eq!(
            ws.ended().await,
            common::Ended::Closed(Some(1013)),
            "{name}"
        );
        // No heartbeats: after ONLINE_TTL the three are offline and their places free.
        tokio::time::timeout(WAIT, async {
            while login(&server, "d").await != 200 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{name}: places never freed"));
        assert_eq!(
            server.state().engine.local_connections(),
            0,
            "{name}: no socket budget used"
        );
        server.stop().await;
    }
}

async fn create_session(server: &TestServer, headers: &[(&str, &str)]) -> (u16, serde_json::Value) {
    server
        .post("/v1/sessions", headers, r#"{"ttl_secs":1}"#)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_max_active_is_exact_and_expired_sessions_give_places_back() {
    let redis = RedisServer::start();
    for backend in backends(&redis, "session-cap").await {
        let name = backend.name;
        let server = std::sync::Arc::new(
            spawn_with(
                settings(|s| {
                    s.session_max_active = 20;
                    s.session_retention = 0;
                    s.session_expiry_check_ms = 50;
                }),
                backend,
            )
            .await,
        );
        let statuses = at_once(30, |i| {
            let server = server.clone();
            async move {
                let path = if i % 2 == 0 {
                    "/v1/sessions"
                } else {
                    "/v1/qr-login/generate"
                };
                server.post(path, &[], "{}").await.0
            }
        })
        .await;
        assert_eq!(count(&statuses, 200), 20, "{name}: {statuses:?}");
        assert_eq!(count(&statuses, 503), 10, "{name}: {statuses:?}");
        let server = match std::sync::Arc::try_unwrap(server) {
            Ok(s) => s,
            Err(_) => panic!("server still shared"),
        };
        server.stop().await;
    }
    // Expiry returns places: ttl 1 s, no retention.
    for backend in backends(&redis, "session-expiry").await {
        let name = backend.name;
        let server = spawn_with(
            settings(|s| {
                s.session_max_active = 2;
                s.session_retention = 0;
                s.session_expiry_check_ms = 50;
            }),
            backend,
        )
        .await;
        assert_eq!(create_session(&server, &[]).await.0, 200);
        assert_eq!(create_session(&server, &[]).await.0, 200);
        let (status, body) = create_session(&server, &[]).await;
        assert_eq!(status, 503, "{name}: {body}");
        assert!(body["error"]
            .as_str()
            .unwrap()
            .contains("SESSION_MAX_ACTIVE"));
        tokio::time::timeout(WAIT, async {
            while create_session(&server, &[]).await.0 != 200 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{name}: expired sessions kept their places"));
        server.stop().await;
    }
}

#[tokio::test]
async fn per_ip_creation_rates_answer_429_and_api_key_callers_are_exempt() {
    let server = spawn_with(
        settings(|s| {
            s.online_logins_per_ip_per_second = 1;
            s.session_creates_per_ip_per_second = 1;
            s.api_key = "k".into();
        }),
        Backend::memory(),
    )
    .await;
    // Burst of 2, then 1 per second: 10 quick logins cannot all pass.
    let mut refused = None;
    for i in 0..10 {
        let body = json!({ "playerId": format!("r{i}") }).to_string();
        let (status, body) = server.post("/api/online/login", &[], &body).await;
        if status == 429 {
            refused = Some(body);
            break;
        }
        assert_eq!(status, 200, "{body}");
    }
    let body = refused.expect("a login refused by the per-IP rate");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("ONLINE_LOGINS_PER_IP_PER_SECOND"),
        "{body}"
    );
    let mut refused = None;
    for _ in 0..10 {
        let (status, body) = create_session(&server, &[]).await;
        if status == 429 {
            refused = Some(body);
            break;
        }
    }
    let body = refused.expect("a session refused by the per-IP rate");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("SESSION_CREATES_PER_IP_PER_SECOND"));
    // The app's back end logs in many players from one address.
    let auth = [("authorization", "Bearer k")];
    for i in 0..20 {
        let body = json!({ "playerId": format!("backend{i}") }).to_string();
        assert_eq!(server.post("/api/online/login", &auth, &body).await.0, 200);
        assert_eq!(create_session(&server, &auth).await.0, 200);
    }
    server.stop().await;
}

#[tokio::test]
async fn the_online_ip_is_the_forwarded_client_only_behind_a_trusted_proxy() {
    for (trusted, want) in [("127.0.0.1", "5.5.5.5"), ("", "127.0.0.1")] {
        let server = spawn_with(
            settings(|s| s.trusted_proxies = trusted.into()),
            Backend::memory(),
        )
        .await;
        let xff = [("x-forwarded-for", "5.5.5.5")];
        let (status, _) = server
            .post("/api/online/login", &xff, r#"{"playerId":"ip1"}"#)
            .await;
        assert_eq!(status, 200);
        let (_, record) = server.get("/api/online/player/ip1").await;
        assert_eq!(record["ip"], want, "TRUSTED_PROXIES={trusted:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn session_max_per_ip_caps_live_sessions_until_their_expiry() {
    let server = common::spawn(settings(|s| {
        s.session_max_per_ip = 3;
        s.session_retention = 0;
        s.session_expiry_check_ms = 50;
        s.api_key = "k".into();
    }))
    .await;
    for _ in 0..3 {
        assert_eq!(create_session(&server, &[]).await.0, 200);
    }
    let (status, body) = create_session(&server, &[]).await;
    assert_eq!(status, 429, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("SESSION_MAX_PER_IP"));
    // The app's back end is not one client.
    let (status, _) = create_session(&server, &[("authorization", "Bearer k")]).await;
    assert_eq!(status, 200);
    // Each place comes back when its session expires (ttl 1 s, no retention).
    tokio::time::timeout(WAIT, async {
        while create_session(&server, &[]).await.0 != 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("expired sessions kept their per-IP places");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_records_are_capped_and_the_oldest_go_first() {
    let redis = RedisServer::start();
    for backend in backends(&redis, "offline-cap").await {
        let name = backend.name;
        let server = spawn_with(settings(|s| s.online_max_offline_records = 3), backend).await;
        for i in 0..6 {
            let player = format!("p{i}");
            assert_eq!(login(&server, &player).await, 200);
            let body = json!({ "playerId": player }).to_string();
            assert_eq!(server.post("/api/online/logout", &[], &body).await.0, 200);
        }
        // Logged in again, a player's record no longer counts as offline: one more can go
        // offline without pushing another out.
        assert_eq!(login(&server, "p5").await, 200);
        assert_eq!(login(&server, "p6").await, 200);
        let body = json!({ "playerId": "p6" }).to_string();
        assert_eq!(server.post("/api/online/logout", &[], &body).await.0, 200);
        let mut kept = Vec::new();
        for i in 0..7 {
            let (status, record) = server.get(&format!("/api/online/player/p{i}")).await;
            match status {
                200 => kept.push(format!("p{i} {}", record["status"].as_str().unwrap_or(""))),
                404 => {}
                other => panic!("{name}: {other} {record}"),
            }
        }
        assert_eq!(
            kept,
            ["p3 offline", "p4 offline", "p5 online", "p6 offline"],
            "{name}"
        );
        server.stop().await;
    }
}
