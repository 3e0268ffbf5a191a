//! Test harness: a real server on 127.0.0.1:0 and real WebSocket/HTTP clients over loopback.
//! Nothing here sleeps to wait for an event: every wait is for a message, with a timeout.
#![allow(dead_code)]

pub mod eio;
pub mod pusher;
pub mod raw;
pub mod shared;

use std::net::SocketAddr;
use std::time::Duration;

use activenow::{AppState, Server, Settings};
use activenow_engine::Backend;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single expected message may take.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn settings() -> Settings {
    Settings {
        bind: "127.0.0.1".into(),
        port: 0,
        node_id: "test".into(),
        ..Settings::default()
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    server: Option<Server>,
}

pub async fn spawn(settings: Settings) -> TestServer {
    spawn_with(settings, Backend::memory()).await
}

pub async fn spawn_with(settings: Settings, backend: Backend) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let state = AppState::new(settings, backend);
    let server = Server::start(listener, state).expect("start");
    TestServer {
        addr: server.addr,
        server: Some(server),
    }
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    pub fn state(&self) -> &AppState {
        &self.server.as_ref().expect("running").state
    }

    /// Opens a WebSocket; panics if the upgrade fails.
    pub async fn ws(&self, path: &str) -> Client {
        self.try_ws(path, &[]).await.expect("upgrade")
    }

    /// Opens a WebSocket with extra headers; the error carries the HTTP status on refusal.
    pub async fn try_ws(&self, path: &str, headers: &[(&str, &str)]) -> Result<Client, u16> {
        let mut req = self.ws_url(path).into_client_request().expect("request");
        for (k, v) in headers {
            req.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((stream, _)) => Ok(Client { stream }),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
            Err(e) => panic!("connect failed: {e}"),
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = reqwest::get(self.url(path)).await.expect("GET");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let resp = reqwest::get(self.url(path)).await.expect("GET");
        (
            resp.status().as_u16(),
            resp.text().await.unwrap_or_default(),
        )
    }

    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("POST");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Graceful shutdown, as on SIGTERM.
    pub async fn stop(self) {
        self.stop_within(Duration::from_secs(5)).await
    }

    /// Graceful shutdown with `SHUTDOWN_GRACE` = `grace`.
    pub async fn stop_within(mut self, grace: Duration) {
        if let Some(server) = self.server.take() {
            server.shutdown(grace).await;
        }
    }
}

pub struct Client {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How a socket ended.
#[derive(Debug, PartialEq)]
pub enum Ended {
    Closed(Option<u16>),
    Dropped,
}

impl Client {
    pub async fn send_json(&mut self, v: Value) {
        self.send_text(&v.to_string()).await;
    }

    pub async fn send_text(&mut self, s: &str) {
        self.stream.send(Message::text(s)).await.expect("send");
    }

    /// The next JSON message (pings skipped); panics on timeout or close.
    pub async fn next_json(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("no message within the wait")
                .expect("socket ended")
                .expect("socket error");
            match msg {
                Message::Text(t) => return serde_json::from_str(&t).expect("JSON"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// The next message, which must have `type` = `ty`.
    pub async fn expect_type(&mut self, ty: &str) -> Value {
        let v = self.next_json().await;
        assert_eq!(v["type"], ty, "expected {ty}, got {v}");
        v
    }

    /// Skips messages until one of type `ty`.
    pub async fn until_type(&mut self, ty: &str) -> Value {
        self.until(|v| v["type"] == ty).await
    }

    /// Skips messages until one satisfies `pred`.
    pub async fn until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let v = self.next_json().await;
            if pred(&v) {
                return v;
            }
        }
    }

    /// Reads until the socket ends; returns the close code if the server sent one.
    pub async fn ended(&mut self) -> Ended {
        loop {
            let next = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("socket still open after the wait");
            match next {
                Some(Ok(Message::Close(frame))) => {
                    return Ended::Closed(frame.map(|f: CloseFrame| u16::from(f.code)))
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Ended::Dropped,
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
        // Drain until the server's close arrives, so the server has seen it.
        while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, self.stream.next()).await {}
    }
}
