//! Every scenario, small and short, through the real binary: against a real activenow server
//! started in this process on 127.0.0.1:0, and against the floor server. Assertions are on
//! counts only (sockets connected, events seen), never on timings.

use std::path::PathBuf;
use std::process::Command;

use activenow::{AppState, Server, Settings};
use activenow_engine::Backend;
use serde_json::Value;

fn bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_activenow-bench"))
}

fn json_path(name: &str, url: &str) -> PathBuf {
    let port = url.rsplit(':').next().unwrap_or("0");
    std::env::temp_dir().join(format!(
        "activenow-bench-{}-{port}-{name}.json",
        std::process::id()
    ))
}

/// Runs `scenario` against `url` and returns the median figures of its one run.
async fn run(scenario: &'static str, url: String) -> serde_json::Map<String, Value> {
    run_with(scenario, url, &["--conns", "20"]).await
}

async fn run_with(
    scenario: &'static str,
    url: String,
    extra: &[&str],
) -> serde_json::Map<String, Value> {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let json = json_path(scenario, &url);
    let out = {
        let json = json.clone();
        tokio::task::spawn_blocking(move || {
            bench()
                .args([scenario, "--url", &url, "--no-floor", "--runs", "1"])
                .args(["--duration", "2", "--warmup", "0"])
                .args(&extra)
                .args(["--rooms", "2", "--members", "20"])
                .args(["--rate", "20", "--hold-ms", "100", "--updates", "10"])
                .arg("--json")
                .arg(&json)
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    assert!(
        out.status.success(),
        "{scenario} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    let targets = doc["targets"].as_object().unwrap();
    assert_eq!(targets.len(), 1);
    let (_, target) = targets.iter().next().unwrap();
    target["median"].as_object().unwrap().clone()
}

async fn check_all(url: String) {
    let idle = run("idle", url.clone()).await;
    assert_eq!(idle["sockets"], 20.0);

    let hb = run("heartbeat", url.clone()).await;
    assert_eq!(hb["sockets"], 20.0);
    assert!(hb["offered_per_s"].as_f64().unwrap() > 0.0);
    assert!(hb["accepted_per_s"].as_f64().unwrap() > 0.0);

    let churn = run("churn", url.clone()).await;
    assert!(churn["joins_per_s"].as_f64().unwrap() > 0.0);
    assert!(
        churn["join_event_p50_ms"].is_number(),
        "watchers saw no join"
    );

    let fanout = run("fanout", url).await;
    assert!(fanout["updates_per_s"].as_f64().unwrap() > 0.0);
    assert!(fanout["deliveries_per_s"].as_f64().unwrap() > 0.0);
    assert!(
        fanout["delivery_p50_ms"].is_number(),
        "members saw no update"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_against_activenow() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let settings = Settings {
        bind: "127.0.0.1".into(),
        port: 0,
        node_id: "bench-test".into(),
        ..Default::default()
    };
    let server = Server::start(listener, AppState::new(settings, Backend::memory())).unwrap();
    check_all(format!("http://{}", server.addr)).await;
    server.shutdown(std::time::Duration::from_secs(5)).await;
}

struct Floor(std::process::Child);

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_against_the_floor() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = bench()
        .args(["floor-server", "--port", &port.to_string()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _floor = Floor(child);
    // The floor says so on stderr once it listens.
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stderr), &mut line).unwrap();
        line
    })
    .await
    .unwrap();
    assert!(line.contains("floor server on"), "floor said {line:?}");
    let addr = format!("127.0.0.1:{port}");
    check_all(format!("http://{addr}")).await;

    // More sockets than one generator may hold: split over two generator processes.
    let split = run_with(
        "idle",
        format!("http://{addr}"),
        &["--conns", "1200", "--max-fds", "1000"],
    )
    .await;
    assert_eq!(split["sockets"], 1200.0);
}

/// `server-api` on memory, and on Redis when a `redis-server` can be started: every call
/// answered (the bench checks each answer) and timed.
#[test]
fn server_api_runs_on_both_backends() {
    let mut backends: Vec<Vec<String>> = vec![vec![]];
    if let Some(redis) = activenow_testkit::RedisServer::start() {
        // The bench starts its own fresh redis-server; this one only proves there is one.
        drop(redis);
        let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        backends.push(vec!["--redis".into(), "--redis-server".into(), bin]);
    }
    for extra in backends {
        let json = std::env::temp_dir().join(format!(
            "activenow-bench-{}-server-api{}.json",
            std::process::id(),
            extra.len()
        ));
        let out = bench()
            .args(["server-api", "--members", "250", "--requests", "20"])
            .args(["--page-limit", "100", "--concurrency", "2"])
            .args(&extra)
            .arg("--json")
            .arg(&json)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "server-api {extra:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let _ = std::fs::remove_file(&json);
        assert_eq!(doc["members"], 250);
        for call in [
            "where_is_user",
            "room_info",
            "first_page",
            "page_walk",
            "first_page_1000",
        ] {
            assert!(doc["figures"][call]["p99_ms"].is_number(), "{call}: {doc}");
        }
    }
}

/// `pusher` in its three modes against an activenow server in this process with one Pusher
/// app (the bench's default id/key/secret): every socket subscribed, joins seen by the
/// watchers, events delivered. Counts only, no timings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pusher_modes_run_against_activenow() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let settings = Settings {
        bind: "127.0.0.1".into(),
        port: 0,
        node_id: "bench-pusher-test".into(),
        pusher_app_id: "app-id".into(),
        pusher_app_key: "app-key".into(),
        pusher_app_secret: "app-secret".into(),
        ..Default::default()
    };
    let server = Server::start(listener, AppState::new(settings, Backend::memory())).unwrap();
    let url = format!("http://{}", server.addr);
    let pusher = |mode: &'static str, extra: &'static [&'static str]| {
        let url = url.clone();
        let json = json_path(&format!("pusher-{mode}"), &url);
        async move {
            let out = {
                let json = json.clone();
                tokio::task::spawn_blocking(move || {
                    bench()
                        .args(["pusher", "--mode", mode, "--url", &url])
                        .args(["--duration", "2", "--warmup", "0"])
                        .args(extra)
                        .arg("--json")
                        .arg(&json)
                        .output()
                        .unwrap()
                })
                .await
                .unwrap()
            };
            assert!(
                out.status.success(),
                "pusher {mode} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let doc: Value =
                serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
            let _ = std::fs::remove_file(&json);
            doc
        }
    };
    let idle = pusher("idle", &["--conns", "20", "--rooms", "2"]).await;
    assert_eq!(idle["subscribed"], 20, "{idle}");
    assert_eq!(idle["failed"], 0, "{idle}");

    let churn = pusher(
        "churn",
        &[
            "--conns",
            "10",
            "--rooms",
            "2",
            "--rate",
            "40",
            "--hold-ms",
            "100",
        ],
    )
    .await;
    assert_eq!(churn["subscribed"], 10, "{churn}");
    assert!(churn["joins_per_s"].as_f64().unwrap() > 0.0, "{churn}");
    assert!(
        churn["member_added_received"].as_u64().unwrap() > 0,
        "watchers saw no join: {churn}"
    );

    let fanout = pusher("fanout", &["--members", "10", "--events", "10"]).await;
    assert_eq!(fanout["subscribed"], 10, "{fanout}");
    assert!(fanout["events_per_s"].as_f64().unwrap() > 0.0, "{fanout}");
    assert!(fanout["deliveries"].as_u64().unwrap() > 0, "{fanout}");
    assert_eq!(fanout["events_refused"], 0, "{fanout}");
    server.shutdown(std::time::Duration::from_secs(5)).await;
}
