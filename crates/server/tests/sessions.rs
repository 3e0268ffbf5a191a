//! Session push (SPEC §8) through real HTTP and WebSocket clients: QR login, the general
//! notify, expiry, unknown ids, double notify, a push made before the socket connects.

mod common;

use common::{settings, spawn, Ended, TestServer};
use serde_json::{json, Value};

const KEY: &str = "test-api-key";
const AUTH: (&str, &str) = ("authorization", "Bearer test-api-key");

fn with_key() -> activenow::Settings {
    let mut s = settings();
    s.api_key = KEY.into();
    s.session_expiry_check_ms = 50;
    s
}

async fn generate(server: &TestServer) -> String {
    let (status, body) = server
        .post("/v1/qr-login/generate", &[], r#"{"client_info":"web"}"#)
        .await;
    assert_eq!(status, 200, "{body}");
    body["session_id"].as_str().unwrap().to_owned()
}

async fn status_of(server: &TestServer, id: &str) -> (u16, Value) {
    server.get(&format!("/v1/qr-login/status/{id}")).await
}

#[tokio::test]
async fn qr_login_generate_scan_confirm() {
    let server = spawn(with_key()).await;
    let (status, body) = server
        .post("/v1/qr-login/generate", &[], r#"{"client_info":"web"}"#)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["expires_in"], 300);
    let id = body["session_id"].as_str().unwrap().to_owned();
    let qr: Value = serde_json::from_str(body["qr_data"].as_str().unwrap()).unwrap();
    assert_eq!(qr["session_id"], id.as_str());
    assert_eq!(qr["action"], "login");
    assert!(qr["expires_at"].as_u64().unwrap() > 1_600_000_000);
    assert!(body["qr_image"]
        .as_str()
        .unwrap()
        .starts_with("data:image/svg+xml;base64,"));
    // An empty body is fine too.
    let resp = reqwest::Client::new()
        .post(server.url("/v1/qr-login/generate"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let (status, st) = status_of(&server, &id).await;
    assert_eq!((status, st["status"].clone()), (200, json!("pending")));

    let mut ws = server.ws(&format!("/v1/ws/qr/{id}")).await;
    assert_eq!(
        ws.next_json().await,
        json!({"status": "connected", "message": "Waiting for confirmation"})
    );
    let (_, metrics) = server.get_text("/metrics").await;
    assert!(metrics.contains("activenow_session_sockets 1"), "{metrics}");

    let scan = json!({"session_id": id}).to_string();
    let (status, body) = server.post("/v1/qr-login/scan", &[AUTH], &scan).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ws.next_json().await, json!({"status": "scanned"}));
    assert_eq!(status_of(&server, &id).await.1["status"], "scanned");

    let confirm = json!({"session_id": id, "web_token": "tok-123"}).to_string();
    let (status, body) = server.post("/v1/qr-login/confirm", &[AUTH], &confirm).await;
    assert_eq!(status, 200);
    assert_eq!(body["success"], true);
    assert_eq!(
        ws.next_json().await,
        json!({"status": "confirmed", "web_token": "tok-123", "message": "Login successful"})
    );
    assert_eq!(ws.ended().await, Ended::Closed(Some(1000)));
    let (_, st) = status_of(&server, &id).await;
    assert_eq!(
        (st["status"].clone(), st["web_token"].clone()),
        (json!("confirmed"), json!("tok-123"))
    );

    // Finished: a second confirm or a reject is refused with 400.
    let (status, body) = server.post("/v1/qr-login/confirm", &[AUTH], &confirm).await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("Session already processed"))
    );
    assert_eq!(
        server.post("/v1/qr-login/reject", &[AUTH], &scan).await.0,
        400
    );
    // A socket connecting now replays the pushes (so learns the outcome), then closes.
    let mut late = server.ws(&format!("/v1/ws/session/{id}")).await;
    assert_eq!(late.next_json().await["status"], "connected");
    assert_eq!(late.next_json().await["status"], "scanned");
    assert_eq!(late.next_json().await["web_token"], "tok-123");
    assert_eq!(late.ended().await, Ended::Closed(Some(1000)));
    server.stop().await;
}

#[tokio::test]
async fn reject_pushes_and_closes() {
    let server = spawn(with_key()).await;
    let id = generate(&server).await;
    let mut ws = server.ws(&format!("/v1/ws/session/{id}")).await;
    ws.next_json().await;
    let body = json!({"session_id": id}).to_string();
    assert_eq!(
        server.post("/v1/qr-login/reject", &[AUTH], &body).await.0,
        200
    );
    assert_eq!(ws.next_json().await["status"], "rejected");
    assert_eq!(ws.ended().await, Ended::Closed(Some(1000)));
    assert_eq!(status_of(&server, &id).await.1["status"], "rejected");
    server.stop().await;
}

#[tokio::test]
async fn unknown_ids_and_bad_requests() {
    let server = spawn(with_key()).await;
    assert_eq!(
        server.try_ws("/v1/ws/qr/no-such-session", &[]).await.err(),
        Some(404)
    );
    assert_eq!(
        server.try_ws("/v1/ws/session/bad%20id", &[]).await.err(),
        Some(404)
    );
    let (status, body) = status_of(&server, "no-such-session").await;
    assert_eq!((status, body["status"].clone()), (404, json!("not_found")));
    let unknown = json!({"session_id": "no-such-session", "web_token": "t"}).to_string();
    let (status, body) = server.post("/v1/qr-login/confirm", &[AUTH], &unknown).await;
    assert_eq!(
        (status, body["error"].clone()),
        (404, json!("Session not found"))
    );
    let (status, _) = server
        .post(
            "/v1/sessions/no-such-session/notify",
            &[AUTH],
            r#"{"status":"paid"}"#,
        )
        .await;
    assert_eq!(status, 404);
    let id = generate(&server).await;
    for (path, body) in [
        (
            "/v1/qr-login/confirm".to_owned(),
            json!({"session_id": id}).to_string(),
        ),
        ("/v1/qr-login/scan".to_owned(), "{}".to_owned()),
        ("/v1/qr-login/scan".to_owned(), "not json".to_owned()),
        (
            format!("/v1/sessions/{id}/notify"),
            r#"{"status":"bad status!"}"#.to_owned(),
        ),
        (
            format!("/v1/sessions/{id}/notify"),
            r#"{"status":"ok","close":"yes"}"#.to_owned(),
        ),
    ] {
        let (status, reply) = server.post(&path, &[AUTH], &body).await;
        assert_eq!(status, 400, "{path} {body}");
        assert!(reply["error"].is_string());
    }
    for ttl in ["0", "-1", "\"x\"", "999999999"] {
        let (status, _) = server
            .post("/v1/sessions", &[], &format!(r#"{{"ttl_secs":{ttl}}}"#))
            .await;
        assert_eq!(status, 400, "ttl {ttl}");
    }
    // The app side needs the key.
    let scan = json!({"session_id": id}).to_string();
    for headers in [
        vec![],
        vec![("authorization", "Bearer wrong")],
        vec![("authorization", KEY)],
    ] {
        let (status, body) = server.post("/v1/qr-login/scan", &headers, &scan).await;
        assert_eq!(status, 401, "{headers:?}");
        assert!(body["error"].is_string());
    }
    server.stop().await;
    // No API_KEY configured: every app-side call is refused (503: the server disabled them).
    let server = spawn(settings()).await;
    let id = generate(&server).await;
    let scan = json!({"session_id": id}).to_string();
    assert_eq!(
        server.post("/v1/qr-login/scan", &[AUTH], &scan).await.0,
        503
    );
    server.stop().await;
}

#[tokio::test]
async fn expiry_pushes_expired_and_closes() {
    let server = spawn(with_key()).await;
    let (status, body) = server
        .post("/v1/sessions", &[], r#"{"ttl_secs":1,"kind":"payment"}"#)
        .await;
    assert_eq!(status, 200);
    let id = body["session_id"].as_str().unwrap().to_owned();
    assert!(body["expires_at"].as_u64().unwrap() > 1_600_000_000);
    let mut ws = server.ws(&format!("/v1/ws/session/{id}")).await;
    assert_eq!(ws.next_json().await["status"], "connected");
    assert_eq!(
        ws.next_json().await,
        json!({"status": "expired", "message": "QR code expired"})
    );
    assert_eq!(ws.ended().await, Ended::Closed(Some(1000)));
    assert_eq!(status_of(&server, &id).await.1["status"], "expired");
    let confirm = json!({"session_id": id, "web_token": "t"}).to_string();
    let (status, body) = server.post("/v1/qr-login/confirm", &[AUTH], &confirm).await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("Session has expired"))
    );
    server.stop().await;
}

#[tokio::test]
async fn a_push_before_the_socket_connects_is_kept_and_double_notify_is_refused() {
    let server = spawn(with_key()).await;
    let (_, body) = server
        .post("/v1/sessions", &[], r#"{"kind":"pairing"}"#)
        .await;
    let id = body["session_id"].as_str().unwrap().to_owned();
    let notify = format!("/v1/sessions/{id}/notify");
    let (status, body) = server
        .post(
            &notify,
            &[AUTH],
            r#"{"status":"paid","data":{"amount":5},"close":false}"#,
        )
        .await;
    assert_eq!((status, body["seq"].clone()), (200, json!(1)));
    let mut ws = server.ws(&format!("/v1/ws/session/{id}")).await;
    assert_eq!(ws.next_json().await["status"], "connected");
    assert_eq!(
        ws.next_json().await,
        json!({"status": "paid", "data": {"amount": 5}})
    );
    // close defaults to true: this one closes the socket.
    let (status, _) = server.post(&notify, &[AUTH], r#"{"status":"done"}"#).await;
    assert_eq!(status, 200);
    assert_eq!(ws.next_json().await, json!({"status": "done"}));
    assert_eq!(ws.ended().await, Ended::Closed(Some(1000)));
    let (status, body) = server.post(&notify, &[AUTH], r#"{"status":"done"}"#).await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("Session already processed"))
    );
    server.stop().await;
}

#[tokio::test]
async fn removal_is_idempotent_and_closes_waiting_sockets() {
    let server = spawn(with_key()).await;
    let id = generate(&server).await;
    let mut ws = server.ws(&format!("/v1/ws/qr/{id}")).await;
    ws.next_json().await;
    let client = reqwest::Client::new();
    for _ in 0..2 {
        let resp = client
            .delete(server.url(&format!("/v1/sessions/{id}")))
            .header(AUTH.0, AUTH.1)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);
    }
    assert_eq!(ws.next_json().await["status"], "removed");
    assert_eq!(ws.ended().await, Ended::Closed(Some(1000)));
    assert_eq!(status_of(&server, &id).await.0, 404);
    assert_eq!(
        server.try_ws(&format!("/v1/ws/qr/{id}"), &[]).await.err(),
        Some(404)
    );
    server.stop().await;
}
