//! `activenow-bench webhooks`: room-webhook throughput with batching. Launches the server
//! with `WEBHOOK_URL` pointing at a receiver in this process (127.0.0.1, answering 200 at
//! once), then `--sessions` clients each join a room of their own and leave it again as fast
//! as the server answers, for `--duration`: every cycle makes 4 room events (`room.occupied`,
//! `member.joined`, `member.left`, `room.vacated`). Reports events delivered per second, the
//! requests they took (mean batch size) and what the server dropped.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use clap::Args;

#[derive(Args, Clone, Debug)]
pub struct WebhookArgs {
    /// The `activenow` binary to launch (memory backend).
    #[arg(long)]
    pub server: PathBuf,
    /// Concurrent clients joining and leaving.
    #[arg(long, default_value_t = 50)]
    pub sessions: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// WEBHOOK_BATCH_MAX of the server.
    #[arg(long, default_value_t = 50)]
    pub batch_max: usize,
}

#[derive(Default)]
struct Counts {
    events: AtomicU64,
    requests: AtomicU64,
}

async fn hook(State(c): State<Arc<Counts>>, body: Bytes) -> &'static str {
    let n = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["events"].as_array().map(Vec::len))
        .unwrap_or(0);
    c.events.fetch_add(n as u64, Ordering::Relaxed);
    c.requests.fetch_add(1, Ordering::Relaxed);
    "ok"
}

pub async fn main(args: WebhookArgs) -> anyhow::Result<()> {
    crate::conn::raise_fd_limit();
    let counts = Arc::new(Counts::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook_addr = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .with_state(counts.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let port = crate::target::free_port()?;
    let mut cmd = std::process::Command::new(&args.server);
    cmd.env("PORT", port.to_string())
        .env("BIND", "127.0.0.1")
        .env("RUST_LOG", "warn")
        .env_remove("REDIS_URL")
        .env("WEBHOOK_URL", format!("http://{hook_addr}/hook"))
        .env("WEBHOOK_SECRET", "bench")
        .env("WEBHOOK_EVENTS", "*")
        .env("WEBHOOK_QUEUE_CAPACITY", "1000000")
        .env("WEBHOOK_BATCH_MAX", args.batch_max.to_string())
        .env("MAX_CONNECTIONS_PER_IP", "0")
        .env("MAX_HANDSHAKES_PER_IP_PER_SECOND", "0");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let target = crate::target::launch(cmd, addr).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let cycles = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..args.sessions {
        let (stop, cycles) = (stop.clone(), cycles.clone());
        tasks.push(tokio::spawn(async move {
            let source = Ipv4Addr::new(127, 0, 0, 2 + (i % 200) as u8);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let path = crate::conn::room_path(&format!("hooks-{i}"), &format!("s{i}-{n}"));
                let mut ws = crate::conn::connect(addr, source, &path).await?;
                crate::conn::first_text(&mut ws, Duration::from_secs(10)).await?;
                let _ = ws.close(None).await;
                // Wait for the server's close, so its leave is done before the next join.
                let _ = tokio::time::timeout(
                    Duration::from_secs(10),
                    futures_util::StreamExt::count(&mut ws),
                )
                .await;
                n += 1;
                cycles.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.context("a client task panicked")??;
    }
    let load_secs = start.elapsed().as_secs_f64();
    let produced = cycles.load(Ordering::Relaxed) * 4;
    // Drain: wait until every produced event arrived (or 30 s of no progress).
    let mut last = (counts.events.load(Ordering::Relaxed), Instant::now());
    let mut done_at = Instant::now();
    loop {
        let got = counts.events.load(Ordering::Relaxed);
        if got >= produced {
            done_at = Instant::now();
            break;
        }
        if got != last.0 {
            last = (got, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(30) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total_secs = done_at.duration_since(start).as_secs_f64();
    let events = counts.events.load(Ordering::Relaxed);
    let requests = counts.requests.load(Ordering::Relaxed).max(1);
    println!(
        "webhooks: {} sessions, {:.1} s of load, WEBHOOK_BATCH_MAX {}",
        args.sessions, load_secs, args.batch_max
    );
    println!(
        "  produced {produced} room events ({:.0}/s), delivered {events} in {requests} requests (mean batch {:.1}), all delivered after {:.1} s",
        produced as f64 / load_secs,
        events as f64 / requests as f64,
        total_secs
    );
    println!(
        "  delivered throughput: {:.0} events/s, {:.0} requests/s",
        events as f64 / total_secs,
        requests as f64 / total_secs
    );
    drop(target);
    Ok(())
}
