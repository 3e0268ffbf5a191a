//! The server API across two real nodes on one real `redis-server`: "where is user X",
//! room figures and paged members agree on every node, and a publish from either node
//! reaches ActiveNow and Socket.IO members on both, each in its protocol's shape.

mod cluster;
mod common;

use std::collections::BTreeSet;

use activenow_testkit::RedisServer;
use cluster::{Node, FAST};
use common::eio::{event, Eio, WEBSOCKET};
use common::Client;
use serde_json::{json, Value};

const KEY: &str = "test-key";
const BEARER: &str = "Bearer test-key";

fn nodes(redis: &RedisServer) -> (Node, Node) {
    let mut env = FAST.to_vec();
    env.push(("API_KEY", KEY));
    env.push(("MEMBERS_PAGE_MAX", "50"));
    (
        Node::start(&redis.url(), "a", &env),
        Node::start(&redis.url(), "b", &env),
    )
}

async fn get(node: &Node, path: &str, auth: bool) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(node.url(path));
    if auth {
        req = req.header("authorization", BEARER);
    }
    let resp = req.send().await.expect("GET");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn join_ws(node: &Node, room: &str, sid: &str) -> Client {
    let mut c = node
        .ws(&format!("/v1/ws?room={room}&socket_session_id={sid}"))
        .await;
    c.expect_type("hello").await;
    c.until(|v| v["type"] == "ACTIVITY_JOIN_PRESENCE" && v["data"]["identity"] == sid)
        .await;
    c
}

async fn join_sio(node: &Node, room: &str, user: &str) -> Eio {
    let mut eio = Eio {
        ws: node.ws(WEBSOCKET).await,
    };
    assert!(eio.next().await.starts_with("0{"));
    eio.connect().await;
    let ack = eio.join(room, user).await;
    let ack = if ack.is_array() { ack[0].clone() } else { ack };
    assert_eq!(ack["ok"], true, "{ack}");
    eio
}

async fn until_event(eio: &mut Eio, name: &str) -> Value {
    loop {
        if let Some((e, data)) = event(&eio.next().await) {
            if e == name {
                return data;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_is_user_rooms_and_pages_across_nodes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = nodes(&redis);
    let _x = join_ws(&a, "lobby", "xavier").await;
    let _y = join_ws(&b, "lobby", "yan").await;
    let _x2 = join_sio(&b, "kitchen", "xavier").await;

    let (status, doc) = get(&b, "/openapi.json", false).await;
    assert_eq!((status, doc["openapi"].clone()), (200, json!("3.1.0")));
    assert!(doc["paths"]["/v1/users/{identity}"]["delete"].is_object());

    // Unauthenticated callers learn nothing.
    assert_eq!(get(&a, "/v1/users/xavier", false).await.0, 401);
    assert_eq!(get(&a, "/v1/rooms/lobby/members", false).await.0, 401);

    for node in [&a, &b] {
        let (status, user) = get(node, "/v1/users/xavier", true).await;
        assert_eq!(status, 200, "{user}");
        assert_eq!(user["online"], true);
        assert_eq!(user["connections"], 2);
        let rooms: Vec<_> = user["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["room"].as_str().unwrap().to_owned(),
                    r["connections"].clone(),
                )
            })
            .collect();
        assert_eq!(
            rooms,
            vec![("kitchen".into(), json!(1)), ("lobby".into(), json!(1))],
            "{user}"
        );
        let (_, room) = get(node, "/v1/rooms/lobby", true).await;
        assert_eq!(
            (room["count"].clone(), room["connections"].clone()),
            (json!(2), json!(2))
        );
        assert!(room["since"].as_u64().unwrap() > 0);
    }
    let (_, nobody) = get(&a, "/v1/users/nobody", true).await;
    assert_eq!(
        (nobody["online"].clone(), nobody["rooms"].clone()),
        (json!(false), json!([]))
    );
    let (_, empty) = get(&a, "/v1/rooms/empty", true).await;
    assert_eq!(
        (empty["count"].clone(), empty["since"].clone()),
        (json!(0), Value::Null)
    );

    // 120 members on two nodes, paged 50 at most (MEMBERS_PAGE_MAX) whatever is asked.
    let mut held = Vec::new();
    for i in 0..120 {
        let node = if i % 2 == 0 { &a } else { &b };
        held.push(join_ws(node, "hall", &format!("m{i:03}")).await);
    }
    let mut seen = BTreeSet::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let node = if pages % 2 == 0 { &a } else { &b };
        let (status, page) = get(
            node,
            &format!("/v1/rooms/hall/members?limit=500&cursor={cursor}"),
            true,
        )
        .await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        let members = page["members"].as_array().unwrap();
        assert!(members.len() <= 50);
        for m in members {
            assert!(
                seen.insert(m["identity"].as_str().unwrap().to_owned()),
                "{m}"
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 120);
    assert_eq!(pages, 3);
    assert_eq!(get(&a, "/v1/rooms/hall/members?limit=0", true).await.0, 400);
    assert_eq!(
        get(&a, "/v1/rooms/hall/members?cursor=%21", true).await.0,
        400
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_reaches_every_protocol_on_every_node() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = nodes(&redis);
    let mut ws_a = join_ws(&a, "news", "wa").await;
    let mut ws_b = join_ws(&b, "news", "wb").await;
    let mut sio_a = join_sio(&a, "news", "sa").await;
    let mut sio_b = join_sio(&b, "news", "sb").await;

    let body = r#"{"event":"breaking","data":{"headline":"hi"}}"#;
    assert_eq!(a.post("/v1/rooms/news/publish", &[], body).await.0, 401);
    let (status, reply) = a
        .post("/v1/rooms/news/publish", &[("authorization", BEARER)], body)
        .await;
    assert_eq!(status, 200, "{reply}");

    for ws in [&mut ws_a, &mut ws_b] {
        let frame = ws.until_type("SERVER_EVENT").await;
        assert_eq!(frame["data"]["roomName"], "news");
        assert_eq!(frame["data"]["event"], "breaking");
        assert_eq!(frame["data"]["data"], json!({"headline": "hi"}));
    }
    for sio in [&mut sio_a, &mut sio_b] {
        assert_eq!(
            until_event(sio, "breaking").await,
            json!({"headline": "hi"})
        );
    }
    let (status, _) = b
        .post(
            "/v1/rooms/news/publish",
            &[("authorization", BEARER)],
            r#"{"event":""}"#,
        )
        .await;
    assert_eq!(status, 400);
}

async fn delete(node: &Node, path: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .delete(node.url(path))
        .header("authorization", BEARER)
        .send()
        .await
        .expect("DELETE");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Reads Engine.IO packets until the `activenow:kicked` event and then the Socket.IO
/// server disconnect (`41`).
async fn until_kicked(eio: &mut Eio) {
    let mut told = false;
    loop {
        let p = eio.next().await;
        if let Some((e, data)) = event(&p) {
            if e == "activenow:kicked" {
                assert_eq!(data, json!({"reason": "kicked"}));
                told = true;
            }
        } else if p == "41" {
            assert!(told, "the kick event comes before the disconnect");
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kick_disconnects_an_identity_on_every_node() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = nodes(&redis);
    let mut ws_a = join_ws(&a, "den", "kate").await;
    let mut ws_b = join_ws(&b, "porch", "kate").await;
    let mut sio_b = join_sio(&b, "den", "kate").await;
    let mut watcher = join_ws(&a, "den", "walt").await;
    let mut bystander = join_ws(&b, "porch", "bea").await;

    // Only the den: the porch socket stays.
    let (status, reply) = delete(&b, "/v1/users/kate?rooms=den").await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["rooms"], json!(["den"]));
    assert_eq!(reply["connections"], 2);
    assert!(matches!(
        ws_a.ended().await,
        common::Ended::Closed(Some(4003))
    ));
    until_kicked(&mut sio_b).await;
    watcher
        .until(|v| v["type"] == "ACTIVITY_LEAVE_PRESENCE" && v["data"]["identity"] == "kate")
        .await;

    // Everywhere: the porch socket on the other node goes too.
    let (status, reply) = delete(&a, "/v1/users/kate").await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["rooms"], json!(["porch"]));
    assert!(matches!(
        ws_b.ended().await,
        common::Ended::Closed(Some(4003))
    ));
    bystander
        .until(|v| v["type"] == "ACTIVITY_LEAVE_PRESENCE" && v["data"]["identity"] == "kate")
        .await;
    let (_, user) = get(&b, "/v1/users/kate", true).await;
    assert_eq!(user["online"], false, "{user}");
    let (_, bea) = get(&a, "/v1/users/bea", true).await;
    assert_eq!(bea["online"], true);
}
