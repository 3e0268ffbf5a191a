//! Multi-node harness: real `activenow` processes (the built binary) on loopback ports, all
//! on one real `redis-server`, and real clients. Children die with the test process.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use activenow_testkit::{free_port, spawn_tied};
use serde_json::Value;

use crate::common::{Client, WAIT};

/// Settings for fast convergence: a node silent for 3 s is dead and reaped, the reaper runs
/// every 200 ms, Redis calls give up after 500 ms. (Room sockets keep the 30 s TTL, so test
/// clients need no heartbeats; the lookback is long enough that a busy debug node is not
/// taken for dead.)
pub const FAST: &[(&str, &str)] = &[
    ("PRESENCE_REAPER_INTERVAL_MS", "200"),
    ("PRESENCE_REAPER_LOOKBACK_MS", "3000"),
    ("REDIS_TIMEOUT_MS", "500"),
    ("SEND_QUEUE_CAPACITY", "4096"),
];

pub struct Node {
    pub name: String,
    pub port: u16,
    child: Option<Child>,
}

impl Node {
    /// Starts `activenow` with `REDIS_URL` and waits for its "listening" log line.
    pub fn start(redis_url: &str, name: &str, env: &[(&str, &str)]) -> Node {
        let mut last = String::new();
        for _ in 0..3 {
            match Node::try_start(redis_url, name, env) {
                Ok(node) => return node,
                Err(e) => last = e,
            }
        }
        panic!("node {name} did not start: {last}");
    }

    fn try_start(redis_url: &str, name: &str, env: &[(&str, &str)]) -> Result<Node, String> {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_activenow"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BIND", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("NODE_ID", name)
            .env("RUST_LOG", "info")
            .env("LOG_FORMAT", "text")
            .env("NO_COLOR", "1")
            .env("SHUTDOWN_GRACE", "2");
        if !redis_url.is_empty() {
            cmd.env("REDIS_URL", redis_url);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawn_tied(cmd).map_err(|e| e.to_string())?;
        let (ready_tx, ready_rx) = mpsc::channel();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let tag = name.to_owned();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("activenow listening") {
                    let _ = ready_tx.send(());
                }
                eprintln!("[{tag}] {line}");
            }
        });
        let tag = name.to_owned();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[{tag} stderr] {line}");
            }
        });
        let mut node = Node {
            name: name.to_owned(),
            port,
            child: Some(child),
        };
        match ready_rx.recv_timeout(WAIT) {
            Ok(()) => Ok(node),
            Err(_) => {
                let status = node.kill9();
                Err(format!("not listening within {WAIT:?} (exit: {status:?})"))
            }
        }
    }

    /// `SIGKILL`: no cleanup at all, as a crashed machine. Returns the exit status.
    pub fn kill9(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = child.kill();
        child.wait().ok()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub async fn ws(&self, path: &str) -> Client {
        let url = format!("ws://127.0.0.1:{}{path}", self.port);
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .unwrap_or_else(|e| panic!("{}: connect {path}: {e}", self.name));
        Client { stream }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = reqwest::get(self.url(path)).await.expect("GET");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
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

    /// The room's count as this node's HTTP API reports it (0 when absent).
    pub async fn room_count(&self, room: &str) -> u64 {
        let (_, v) = self.get("/v1/activity/rooms").await;
        v["room_count"][room].as_u64().unwrap_or(0)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Retries `check` until it holds. For converging *state* (counts in the store, readiness)
/// that no message announces; every event is awaited as a message instead.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Joins `room` as `sid` and reads the hello and the own join.
pub async fn join(node: &Node, room: &str, sid: &str) -> (Client, Value) {
    let mut c = node
        .ws(&format!("/v1/ws?room={room}&socket_session_id={sid}"))
        .await;
    let hello = c.expect_type("hello").await;
    let own = c
        .until(|v| v["type"] == "ACTIVITY_JOIN_PRESENCE" && v["data"]["identity"] == sid)
        .await;
    assert_eq!(hello["sid"], sid);
    (c, own)
}

pub async fn until_join(c: &mut Client, sid: &str) -> Value {
    c.until(|v| v["type"] == "ACTIVITY_JOIN_PRESENCE" && v["data"]["identity"] == sid)
        .await
}

pub async fn until_sync(c: &mut Client, n: u64) {
    c.until(|v| v["type"] == "sync" && v["count"] == n).await;
}
