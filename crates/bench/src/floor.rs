//! The floor: the least a WebSocket server on ActiveNow's stack (axum's WebSocket, tokio,
//! the same buffer sizes and queue bound) must do to serve the same scenarios, with no
//! presence logic at all: no identities, counts, TTL, store or engine.
//!
//! It speaks just enough of seed 0 for the bench: `/v1/ws?room=R&socket_session_id=S` sends a
//! `hello`, broadcasts an `ACTIVITY_JOIN_PRESENCE` on connect and an `ACTIVITY_LEAVE_PRESENCE`
//! on close; `POST /v1/activity/presence/update` broadcasts an `ACTIVITY_UPDATE_PRESENCE`;
//! client frames are counted (as `activenow_heartbeats_total`) and otherwise ignored. Each
//! room is a `tokio::sync::broadcast` channel: a frame is encoded once and cloned per socket.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::SinkExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::broadcast;

use crate::cli::FloorArgs;

#[derive(Clone)]
struct Floor(Arc<Inner>);

struct Inner {
    args: FloorArgs,
    rooms: Mutex<HashMap<String, broadcast::Sender<Utf8Bytes>>>,
    connections: AtomicU64,
    frames_in: AtomicU64,
    frames_out: AtomicU64,
}

impl Floor {
    fn room(&self, name: &str) -> broadcast::Sender<Utf8Bytes> {
        let mut rooms = self.0.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms
            .entry(name.to_owned())
            .or_insert_with(|| broadcast::channel(self.0.args.queue.max(1)).0)
            .clone()
    }

    fn broadcast(&self, room: &str, kind: &str, data: Presence<'_>) {
        let frame = serde_json::to_string(&Typed { kind, data }).unwrap_or_default();
        let tx = self.room(room);
        if let Ok(n) = tx.send(Utf8Bytes::from(frame)) {
            self.0.frames_out.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

pub async fn serve(args: FloorArgs) -> anyhow::Result<()> {
    let limit = crate::conn::raise_fd_limit();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    eprintln!("floor server on 127.0.0.1:{} (fd limit {limit})", args.port);
    let state = Floor(Arc::new(Inner {
        args,
        rooms: Mutex::default(),
        connections: AtomicU64::new(0),
        frames_in: AtomicU64::new(0),
        frames_out: AtomicU64::new(0),
    }));
    let app = Router::new()
        .route("/v1/ws", get(upgrade))
        .route("/v1/activity/presence/update", post(update))
        .route("/health", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .with_state(state);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn metrics(State(f): State<Floor>) -> String {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    format!(
        "activenow_connections {}\nactivenow_heartbeats_total {}\nactivenow_messages_out_total {}\n",
        get(&f.0.connections),
        get(&f.0.frames_in),
        get(&f.0.frames_out)
    )
}

async fn upgrade(
    State(f): State<Floor>,
    Query(q): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let room = q.get("room").cloned().unwrap_or_default();
    let sid = q.get("socket_session_id").cloned().unwrap_or_default();
    let a = &f.0.args;
    ws.read_buffer_size(a.read_buffer)
        .write_buffer_size(a.write_buffer)
        .max_write_buffer_size(a.write_buffer.max(a.max_frame) * 4)
        .max_message_size(a.max_frame)
        .max_frame_size(a.max_frame)
        .on_upgrade(move |socket| run(f, socket, room, sid))
}

async fn run(f: Floor, mut socket: WebSocket, room: String, sid: String) {
    f.0.connections.fetch_add(1, Ordering::Relaxed);
    let tx = f.room(&room);
    let mut rx = tx.subscribe();
    let hello = json!({"type": "hello", "sid": sid, "ttl": 30, "count": 0}).to_string();
    if socket.send(Message::Text(hello.into())).await.is_ok() {
        f.broadcast(&room, "ACTIVITY_JOIN_PRESENCE", Presence::new(&sid, &room));
        loop {
            tokio::select! {
                frame = rx.recv() => match frame {
                    Ok(frame) => {
                        // Write what is queued in one flush, as the activenow socket loop does.
                        let mut ok = socket.feed(Message::Text(frame)).await.is_ok();
                        while ok {
                            match rx.try_recv() {
                                Ok(more) => ok = socket.feed(Message::Text(more)).await.is_ok(),
                                Err(_) => break,
                            }
                        }
                        if !ok || socket.flush().await.is_err() {
                            break;
                        }
                    }
                    // Frames this socket missed are lost (and show as fewer deliveries);
                    // the socket stays, as a broadcast channel's receiver does.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                msg = socket.recv() => match msg {
                    Some(Ok(Message::Text(_))) => {
                        f.0.frames_in.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
            }
        }
    }
    drop(rx);
    f.broadcast(&room, "ACTIVITY_LEAVE_PRESENCE", Presence::new(&sid, &room));
    let mut rooms = f.0.rooms.lock().unwrap_or_else(|e| e.into_inner());
    if rooms.get(&room).is_some_and(|tx| tx.receiver_count() == 0) {
        rooms.remove(&room);
    }
    f.0.connections.fetch_sub(1, Ordering::Relaxed);
}

#[derive(Deserialize)]
struct UpdateBody {
    room_name: String,
    display_name: Option<String>,
    position: Option<serde_json::Number>,
}

async fn update(
    State(f): State<Floor>,
    headers: HeaderMap,
    Json(body): Json<UpdateBody>,
) -> impl IntoResponse {
    let Some(sid) = headers
        .get("x-socket-session-id")
        .and_then(|h| h.to_str().ok())
    else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "missing_session_id"})),
        );
    };
    let data = Presence {
        updated_at: Some(crate::conn::now_us() / 1000),
        display_name: body.display_name.as_deref(),
        position: body.position.as_ref(),
        ..Presence::new(sid, &body.room_name)
    };
    f.broadcast(&body.room_name, "ACTIVITY_UPDATE_PRESENCE", data);
    (StatusCode::OK, Json(json!({"ok": true})))
}

/// Frames in seed 0's shape, `type` first.
#[derive(Serialize)]
struct Typed<'a, T> {
    #[serde(rename = "type")]
    kind: &'a str,
    data: T,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Presence<'a> {
    identity: &'a str,
    room_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<&'a serde_json::Number>,
}

impl<'a> Presence<'a> {
    fn new(identity: &'a str, room_name: &'a str) -> Presence<'a> {
        Presence {
            identity,
            room_name,
            updated_at: None,
            display_name: None,
            position: None,
        }
    }
}
