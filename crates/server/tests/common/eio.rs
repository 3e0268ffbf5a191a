//! Engine.IO v4 / Socket.IO v5 clients by hand: a WebSocket one that reads everything (and
//! answers pings), and polling requests one at a time, so that a test decides exactly which
//! packets a client reads and when.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::{Client, TestServer, WAIT};

pub const POLLING: &str = "/socket.io/?EIO=4&transport=polling";
pub const WEBSOCKET: &str = "/socket.io/?EIO=4&transport=websocket";

/// A Socket.IO client over an Engine.IO WebSocket.
pub struct Eio {
    pub ws: Client,
}

impl Eio {
    /// Opens the session (reads the open packet); the error is the HTTP status of a refusal.
    pub async fn open(server: &TestServer, path: &str) -> Result<Eio, u16> {
        let mut eio = Eio {
            ws: server.try_ws(path, &[]).await?,
        };
        let open = eio.next().await;
        assert!(open.starts_with("0{"), "{open}");
        Ok(eio)
    }

    /// The next Engine.IO packet; pings are answered and skipped. Panics if the socket ends.
    pub async fn next(&mut self) -> String {
        loop {
            let next = tokio::time::timeout(WAIT, self.ws.stream.next())
                .await
                .expect("a packet in time");
            match next {
                Some(Ok(Message::Text(t))) if t.as_str() == "2" => self.send("3").await,
                Some(Ok(Message::Text(t))) => return t.as_str().to_owned(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("the Engine.IO socket ended: {other:?}"),
            }
        }
    }

    pub async fn send(&mut self, packet: &str) {
        self.ws
            .stream
            .send(Message::text(packet.to_owned()))
            .await
            .expect("send");
    }

    /// Socket.IO CONNECT to the main namespace.
    pub async fn connect(&mut self) {
        self.send("40").await;
        while !self.next().await.starts_with("40{") {}
    }

    /// `presence:join` with an ack; returns the ack.
    pub async fn join(&mut self, room: &str, user: &str) -> Value {
        self.send(&format!(
            "421{}",
            json!(["presence:join", {"roomId": room, "userId": user}])
        ))
        .await;
        loop {
            let p = self.next().await;
            if let Some(ack) = p.strip_prefix("431") {
                return serde_json::from_str(ack).expect("ack JSON");
            }
        }
    }
}

/// A `42[event, data]` packet's event and data.
pub fn event(packet: &str) -> Option<(String, Value)> {
    let v: Value = serde_json::from_str(packet.strip_prefix("42")?).ok()?;
    Some((v[0].as_str()?.to_owned(), v[1].clone()))
}

/// Polling requests of one HTTP client (reqwest keeps one keep-alive connection while the
/// requests are sequential).
pub struct Polling {
    pub http: reqwest::Client,
    base: String,
}

impl Polling {
    pub fn new(server: &TestServer) -> Polling {
        Polling {
            http: reqwest::Client::new(),
            base: server.url(POLLING),
        }
    }

    /// A polling handshake: the new session's sid, or the refusal's status and body.
    pub async fn handshake(&self) -> Result<String, (u16, Value)> {
        let resp = self.http.get(&self.base).send().await.expect("GET");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        if status != 200 {
            return Err((status, serde_json::from_str(&text).unwrap_or(Value::Null)));
        }
        let open: Value =
            serde_json::from_str(text.strip_prefix('0').expect("open packet")).expect("open JSON");
        Ok(open["sid"].as_str().expect("sid").to_owned())
    }

    pub async fn post(&self, sid: &str, packet: &str) -> u16 {
        self.http
            .post(format!("{}&sid={sid}", self.base))
            .header("content-type", "text/plain;charset=UTF-8")
            .body(packet.to_owned())
            .send()
            .await
            .expect("POST")
            .status()
            .as_u16()
    }

    /// One long poll: what the server had (or sent next) for the session.
    pub async fn get(&self, sid: &str) -> (u16, String) {
        let resp = tokio::time::timeout(
            WAIT,
            self.http.get(format!("{}&sid={sid}", self.base)).send(),
        )
        .await
        .expect("the long poll answered in time")
        .expect("GET");
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }
}
