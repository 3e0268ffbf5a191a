//! The Socket.IO hub across two nodes that share one backend through the engine's traits
//! only: shared in-memory presence, metadata and lock stores and a broker that brings every
//! message to every node (what the Redis backend does with Lua and pub/sub). A minimal
//! Socket.IO v5 client over a raw WebSocket speaks the wire protocol, so these tests also
//! pin the packet format. The Redis backend must pass the same scenarios on two nodes.

mod common;

use common::shared::shared_memory_backend;
use common::{settings, spawn_with, Client, TestServer, WAIT};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

async fn two_nodes() -> (TestServer, TestServer) {
    let backend = shared_memory_backend();
    let node = |id: &str| {
        let mut s = settings();
        s.node_id = id.into();
        spawn_with(s, backend.clone())
    };
    (node("node-a").await, node("node-b").await)
}

/// A Socket.IO v5 client on the default namespace, WebSocket transport.
struct Sio {
    ws: Client,
    id: String,
    next_ack: u64,
    /// Events received while waiting for something else: `(name, payload)`.
    events: Vec<(String, Value)>,
}

impl Sio {
    async fn connect(server: &TestServer) -> Sio {
        let ws = server.ws("/socket.io/?EIO=4&transport=websocket").await;
        let mut sio = Sio {
            ws,
            id: String::new(),
            next_ack: 1,
            events: Vec::new(),
        };
        let open = sio.frame().await;
        assert!(open.starts_with('0'), "Engine.IO open, got {open}");
        sio.send("40").await;
        let connect = sio.frame().await;
        let body = connect.strip_prefix("40").expect("Socket.IO CONNECT");
        let v: Value = serde_json::from_str(body).unwrap();
        sio.id = v["sid"].as_str().unwrap().to_owned();
        sio
    }

    async fn send(&mut self, text: &str) {
        self.ws.stream.send(Message::text(text)).await.unwrap();
    }

    /// The next Engine.IO text frame, answering pings on the way.
    async fn frame(&mut self) -> String {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.stream.next())
                .await
                .expect("a frame within the wait")
                .expect("socket open")
                .expect("no error");
            if let Message::Text(t) = msg {
                if t.as_str() == "2" {
                    self.send("3").await;
                    continue;
                }
                return t.as_str().to_owned();
            }
        }
    }

    /// Reads one frame; keeps events, returns an ack's payload.
    async fn read(&mut self) -> Option<(u64, Value)> {
        let f = self.frame().await;
        if let Some(event) = f.strip_prefix("42") {
            let v: Value = serde_json::from_str(event).unwrap();
            self.events
                .push((v[0].as_str().unwrap().to_owned(), v[1].clone()));
            return None;
        }
        let ack = f.strip_prefix("43").expect("an event or an ack");
        let split = ack.find('[').unwrap();
        let id = ack[..split].parse().unwrap();
        let v: Value = serde_json::from_str(&ack[split..]).unwrap();
        Some((id, v[0].clone()))
    }

    async fn ask(&mut self, event: &str, payload: Value) -> Value {
        let id = self.next_ack;
        self.next_ack += 1;
        self.send(&format!("42{id}{}", json!([event, payload])))
            .await;
        loop {
            if let Some((got, v)) = self.read().await {
                assert_eq!(got, id);
                return v;
            }
        }
    }

    async fn event(&mut self, name: &str, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            if let Some(i) = self.events.iter().position(|(n, v)| n == name && pred(v)) {
                return self.events.remove(i).1;
            }
            assert!(self.read().await.is_none(), "unexpected ack");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_spans_nodes() {
    let (a, b) = two_nodes().await;
    let mut on_a = Sio::connect(&a).await;
    let mut on_b = Sio::connect(&b).await;
    let join = on_a
        .ask("presence:join", json!({"roomId":"x-room","userId":"alice"}))
        .await;
    assert_eq!(join["ok"], true);
    assert_eq!(join["self"]["connId"], on_a.id.as_str());
    let join = on_b
        .ask(
            "presence:join",
            json!({"roomId":"x-room","userId":"bob","state":{"k":1}}),
        )
        .await;
    let users: Vec<&str> = join["snapshot"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["userId"].as_str().unwrap())
        .collect();
    assert_eq!(users.len(), 2, "{users:?}");
    let bob = on_b.id.clone();
    let e = on_a
        .event("presence:event", |e| {
            e["type"] == "join" && e["connId"] == bob.as_str()
        })
        .await;
    assert_eq!(e["userId"], "bob");
    assert_eq!(e["state"]["k"], 1);
    let hb = on_b
        .ask("presence:heartbeat", json!({"patchState":{"k":2}}))
        .await;
    assert_eq!(hb["changed"], true);
    let e = on_a
        .event("presence:event", |e| e["type"] == "update")
        .await;
    assert_eq!(e["state"]["k"], 2);
    assert_eq!(
        on_b.ask("presence:leave", json!({})).await,
        json!({"ok":true})
    );
    let e = on_a.event("presence:event", |e| e["type"] == "leave").await;
    assert_eq!(e["connId"], bob.as_str());
    on_a.ws.close().await;
    on_b.ws.close().await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_and_locks_span_nodes() {
    let (a, b) = two_nodes().await;
    let mut on_a = Sio::connect(&a).await;
    let mut on_b = Sio::connect(&b).await;
    on_a.ask("presence:join", json!({"roomId":"m-room","userId":"alice"}))
        .await;
    on_b.ask("presence:join", json!({"roomId":"m-room","userId":"bob"}))
        .await;
    let ch = json!({"channelName":"m-room","channelType":"room"});
    let mut set = ch.clone();
    set["data"] = json!([{"key":"topic","value":"hi"}]);
    let r = on_b.ask("metadata:setChannel", set).await;
    assert_eq!(r["majorRevision"], 1);
    // The change made on node B reaches node A's socket.
    let e = on_a
        .event("metadata:event", |e| e["operation"] == "set")
        .await;
    assert_eq!(
        e["items"],
        json!([{"key":"topic","value":"hi","revision":1}])
    );
    assert_eq!(e["authorUid"], "bob");
    // Node A sees node B's write: a stale revision conflicts.
    let mut stale = ch.clone();
    stale["data"] = json!([{"key":"topic","value":"x","revision":0}]);
    let r = on_a.ask("metadata:updateChannel", stale).await;
    assert_eq!(r["code"], "METADATA_CONFLICT");

    // A lock taken on node A guards writes on node B.
    let r = on_a
        .ask("lock:acquire", json!({"name":"editor","ttlMs":10_000}))
        .await;
    assert_eq!(r["ok"], true);
    let r = on_b.ask("lock:acquire", json!({"name":"editor"})).await;
    assert_eq!(
        (r["code"].as_str(), r["owner"].as_str()),
        (Some("LOCK_HELD"), Some("alice"))
    );
    let mut guarded = ch.clone();
    guarded["data"] = json!([{"key":"topic","value":"by bob"}]);
    guarded["options"] = json!({"lockName":"editor"});
    let r = on_b.ask("metadata:updateChannel", guarded.clone()).await;
    assert_eq!(r["code"], "METADATA_LOCK");
    let r = on_a.ask("metadata:updateChannel", guarded).await;
    assert_eq!(r["metadata"]["topic"]["revision"], 2);
    assert_eq!(
        on_a.ask("lock:release", json!({"name":"editor"})).await["released"],
        true
    );
    assert_eq!(
        on_b.ask("lock:acquire", json!({"name":"editor"})).await["ok"],
        true
    );
    on_a.ws.close().await;
    on_b.ws.close().await;
    a.stop().await;
    b.stop().await;
}

/// Metadata changes travel as internal publications: a channels-protocol subscriber of a
/// channel with the same name never sees them, and no channels client can forge one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_changes_stay_out_of_channels_and_cannot_be_forged() {
    const SECRET: &str = "socketio-test-secret-0123456789abcdef";
    let mut s = settings();
    s.jwt_secret = SECRET.into();
    let server = common::spawn(s).await;
    let token = |user: &str| {
        let now = activenow_engine::clock::now_ms();
        activenow::protocol::channels::mint(
            SECRET,
            user,
            None,
            None,
            std::time::Duration::from_secs(60),
            now,
        )
        .unwrap()
    };
    let mut listener = server.ws(&format!("/ws?token={}", token("u1"))).await;
    let mut publisher = server.ws(&format!("/ws?token={}", token("u2"))).await;
    for c in [&mut listener, &mut publisher] {
        c.send_json(json!({"type":"subscribe","channel":"same"}))
            .await;
        assert_eq!(c.next_json().await["type"], "subscribed");
    }
    let mut sio = Sio::connect(&server).await;
    sio.ask("presence:join", json!({"roomId":"same","userId":"alice"}))
        .await;
    // A channels client publishing an event named like the Socket.IO one is just a message.
    publisher
        .send_json(json!({"type":"publish","channel":"same","event":"metadata:event","data":{"forged":true}}))
        .await;
    let forged = listener.expect_type("message").await;
    assert_eq!(forged["event"], "metadata:event");
    let r = sio
        .ask(
            "metadata:setChannel",
            json!({"channelName":"same","channelType":"room","data":[{"key":"k","value":"v"}]}),
        )
        .await;
    assert_eq!(r["ok"], true);
    // The Socket.IO member gets the real change (and never the forged one)...
    let e = sio.event("metadata:event", |_| true).await;
    assert_eq!(e["operation"], "set");
    assert!(sio.events.iter().all(|(n, _)| n != "metadata:event"));
    // ...and the channels listener's next frame is the next channels message, not the change.
    publisher
        .send_json(json!({"type":"publish","channel":"same","event":"after","data":{}}))
        .await;
    let next = listener.expect_type("message").await;
    assert_eq!(next["event"], "after");
    sio.ws.close().await;
    server.stop().await;
}
