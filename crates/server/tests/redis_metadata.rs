//! Channel metadata and named locks on two real nodes sharing one `redis-server`: a write
//! on node A reaches a Socket.IO member on node B as `metadata:event` and B reads the same
//! revision; a lock taken on A is held on B.

mod cluster;
mod common;

use activenow_testkit::RedisServer;
use cluster::{Node, FAST};
use common::{Client, WAIT};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const KEY: &str = "redis-metadata-test-key";

/// The next Socket.IO event or ack frame (`42...` / `43...`), answering pings.
async fn frame(ws: &mut Client) -> String {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.stream.next())
            .await
            .expect("a frame within the wait")
            .expect("socket open")
            .expect("no error");
        if let Message::Text(t) = msg {
            if t.as_str() == "2" {
                ws.stream.send(Message::text("3")).await.unwrap();
                continue;
            }
            return t.as_str().to_owned();
        }
    }
}

async fn socketio_member(node: &Node, room: &str, user: &str) -> Client {
    let mut ws = node.ws("/socket.io/?EIO=4&transport=websocket").await;
    assert!(frame(&mut ws).await.starts_with('0'), "Engine.IO open");
    ws.stream.send(Message::text("40")).await.unwrap();
    assert!(frame(&mut ws).await.starts_with("40"), "Socket.IO CONNECT");
    let join = json!(["presence:join", {"roomId": room, "userId": user}]);
    ws.stream
        .send(Message::text(format!("421{join}")))
        .await
        .unwrap();
    loop {
        if let Some(ack) = frame(&mut ws).await.strip_prefix("431") {
            let v: Value = serde_json::from_str(ack).unwrap();
            assert_eq!(v[0]["ok"], true, "{v}");
            return ws;
        }
    }
}

async fn event(ws: &mut Client, name: &str) -> Value {
    loop {
        let f = frame(ws).await;
        if let Some(e) = f.strip_prefix("42") {
            let v: Value = serde_json::from_str(e).unwrap();
            if v[0] == name {
                return v[1].clone();
            }
        }
    }
}

async fn put(node: &Node, path: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .put(node.url(path))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .expect("PUT");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_and_locks_cross_nodes_through_redis() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut env = FAST.to_vec();
    env.push(("API_KEY", KEY));
    let a = Node::start(&redis.url(), "a", &env);
    let b = Node::start(&redis.url(), "b", &env);
    let mut member = socketio_member(&b, "m-room", "bob").await;

    let path = "/v1/channels/room/m-room/metadata";
    let (status, v) = put(
        &a,
        path,
        json!({"data":[{"key":"topic","value":"hi"}], "actorUserId":"alice"}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["majorRevision"], 1);
    let e = event(&mut member, "metadata:event").await;
    assert_eq!(e["operation"], "set");
    assert_eq!(
        e["items"],
        json!([{"key":"topic","value":"hi","revision":1}])
    );
    let (status, v) = b.get(path).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["majorRevision"], 1);
    assert_eq!(v["metadata"]["topic"]["value"], "hi");

    let auth = format!("Bearer {KEY}");
    let headers = [("authorization", auth.as_str())];
    let (status, v) = a
        .post(
            "/v1/locks/editor",
            &headers,
            r#"{"owner":"alice","ttl_ms":10000}"#,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = b
        .post(
            "/v1/locks/editor",
            &headers,
            r#"{"owner":"bob","ttl_ms":10000}"#,
        )
        .await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["owner"], "alice");
    let (status, v) = b.get("/v1/locks/editor").await;
    assert_eq!((status, v["owner"].as_str()), (200, Some("alice")), "{v}");
}
