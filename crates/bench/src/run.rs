//! A scenario from start to table: for each run, a fresh activenow process and a fresh floor
//! process (alternating, so drifting background load hits both alike), the same clients
//! against each, server counters and RSS read around the measured window.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::cli::RunArgs;
use crate::conn;
use crate::http;
use crate::report::{self, percentile_ms, Figure};
use crate::scenario::{self, Kind, Partial, Share};
use crate::target::{self, Deployment};
use crate::workers;

pub async fn main(kind: Kind, args: RunArgs) -> anyhow::Result<()> {
    let fd_limit = conn::raise_fd_limit();
    if let Some((index, count)) = args.worker()? {
        return workers::work(kind, &args, index, count).await;
    }
    let generators = workers::needed(kind, &args);
    eprintln!(
        "activenow-bench {}: fd limit {fd_limit}, {generators} generator process(es)",
        kind.name()
    );
    let mut names = vec![match &args.target.server {
        Some(_) if args.uses_redis() => format!("activenow x{} redis", args.target.nodes.max(1)),
        Some(_) => "activenow".to_owned(),
        None => format!("server {}", args.target.url),
    }];
    if !args.target.no_floor {
        names.push("floor".into());
    }
    let mut results: Vec<(String, Vec<Vec<Figure>>)> =
        names.iter().map(|n| (n.clone(), Vec::new())).collect();
    for run in 0..args.target.runs.max(1) {
        for (name, runs) in &mut results {
            let deployment = deploy(&args, name == "floor").await?;
            let figures = one(kind, &args, &deployment, generators).await?;
            eprintln!(
                "run {}/{} {name}: {}",
                run + 1,
                args.target.runs,
                figures
                    .iter()
                    .map(|f| format!("{}={:.3}", f.key, f.value))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            runs.push(figures);
            drop(deployment);
            // Let the kernel finish closing the last run's sockets.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    report::summarize(kind, &args, generators, &results)
}

/// Fresh processes for one run: `--nodes` floors (each on its own, no shared state), or the
/// activenow nodes (and their Redis), or the running server.
async fn deploy(args: &RunArgs, floor: bool) -> anyhow::Result<Deployment> {
    let count = args.target.nodes.max(1);
    let mut nodes = Vec::with_capacity(count);
    let mut redis = None;
    if floor {
        for _ in 0..count {
            nodes.push(target::launch_floor(args).await?);
        }
    } else if let Some(bin) = &args.target.server {
        let url = if args.uses_redis() {
            let (server, url) = target::launch_redis(&args.target.redis_server).await?;
            redis = Some(server);
            Some(url)
        } else {
            None
        };
        for node in 0..count {
            nodes.push(target::launch_activenow(bin, args, url.as_deref(), node).await?);
        }
    } else {
        nodes.push(target::running(args)?);
    }
    Ok(Deployment {
        nodes,
        redis,
        floor,
    })
}

struct Window {
    before: BTreeMap<String, f64>,
    after: BTreeMap<String, f64>,
    secs: f64,
    cpu_secs: f64,
    redis_cpu_secs: f64,
    rss_base_kib: Option<u64>,
    rss_kib: Option<u64>,
    /// Rooms whose count was wrong on some node (summed over nodes); NaN when not checked.
    count_errors: f64,
}

impl Window {
    fn rate(&self, counter: &str) -> f64 {
        let d = self.after.get(counter).copied().unwrap_or(0.0)
            - self.before.get(counter).copied().unwrap_or(0.0);
        d / self.secs
    }
}

async fn one(
    kind: Kind,
    args: &RunArgs,
    deployment: &Deployment,
    generators: usize,
) -> anyhow::Result<Vec<Figure>> {
    let servers = deployment.addrs();
    let rss_base_kib = deployment.rss_kib();
    let load = &args.load;
    let measuring = if generators == 1 {
        let share = Share { index: 0, count: 1 };
        let running = scenario::setup(kind, load, &servers, share).await?;
        tokio::spawn(async move { Ok::<Partial, anyhow::Error>(running.measure().await) })
    } else {
        let gens = workers::spawn(generators, &servers).await?;
        tokio::spawn(gens.measure())
    };
    tokio::time::sleep(Duration::from_secs(load.warmup)).await;
    // Every node must agree on every room's count while the long-lived sockets are all in.
    let count_errors = match kind.expected_counts(load) {
        Some(expected) if args.target.server.is_some() && !deployment.floor => {
            let mut wrong = 0;
            for &server in &servers {
                wrong += http::count_mismatches(server, &expected).await?;
            }
            wrong as f64
        }
        _ => f64::NAN,
    };
    let before = metrics(&servers).await;
    let cpu0 = deployment.cpu_secs();
    let redis_cpu0 = deployment.redis_cpu_secs();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(load.duration)).await;
    let after = metrics(&servers).await;
    let cpu1 = deployment.cpu_secs();
    let redis_cpu1 = deployment.redis_cpu_secs();
    let secs = started.elapsed().as_secs_f64();
    let rss_kib = deployment.rss_kib();
    let mut partial = measuring.await??;
    let w = Window {
        before,
        after,
        secs,
        cpu_secs: match (cpu0, cpu1) {
            (Some(a), Some(b)) => b - a,
            _ => f64::NAN,
        },
        redis_cpu_secs: match (redis_cpu0, redis_cpu1) {
            (Some(a), Some(b)) => b - a,
            _ => f64::NAN,
        },
        rss_base_kib,
        rss_kib,
        count_errors,
    };
    Ok(figures(kind, args, &w, &mut partial))
}

/// The nodes' counters, summed.
async fn metrics(servers: &[std::net::SocketAddr]) -> BTreeMap<String, f64> {
    let mut total = BTreeMap::new();
    for &server in servers {
        for (k, v) in http::metrics(server).await.unwrap_or_default() {
            *total.entry(k).or_default() += v;
        }
    }
    total
}

fn figures(kind: Kind, args: &RunArgs, w: &Window, p: &mut Partial) -> Vec<Figure> {
    let d = args.load.duration.max(1) as f64;
    let connected = p.get("connected") as f64;
    let cores = w.cpu_secs / w.secs;
    p.latencies_us.sort_unstable();
    let lat = |q| percentile_ms(&p.latencies_us, q);
    let mut out = vec![Figure::higher("sockets", "sockets connected", connected)];
    out.push(Figure::lower(
        "frames_in_per_s",
        "frames/s received by clients",
        p.get("frames_in") as f64 / d,
    ));
    match kind {
        Kind::Idle => {
            let per_socket = match (w.rss_base_kib, w.rss_kib) {
                (Some(b), Some(a)) if connected > 0.0 => (a as f64 - b as f64) / connected,
                _ => f64::NAN,
            };
            out.push(Figure::lower(
                "server_rss_mib",
                "server RSS (MiB)",
                w.rss_kib.map_or(f64::NAN, |r| r as f64 / 1024.0),
            ));
            out.push(
                Figure::lower(
                    "rss_per_socket_kib",
                    "RSS per idle socket (KiB)",
                    per_socket,
                )
                .target("<= 10"),
            );
            out.push(Figure::higher(
                "heartbeats_per_s",
                "heartbeats/s (server)",
                w.rate("activenow_heartbeats_total"),
            ));
        }
        Kind::Heartbeat => {
            let accepted = w.rate("activenow_heartbeats_total");
            out.push(Figure::higher(
                "offered_per_s",
                "heartbeats/s sent",
                p.get("hb_sent") as f64 / d,
            ));
            out.push(
                Figure::higher("accepted_per_s", "heartbeats/s accepted", accepted)
                    .target(">= 200,000"),
            );
            out.push(Figure::higher(
                "accepted_per_cpu_s",
                "heartbeats per server CPU-second",
                accepted / cores,
            ));
        }
        Kind::Churn => {
            out.push(Figure::higher(
                "joins_per_s",
                "joins/s",
                p.get("joins") as f64 / d,
            ));
            out.push(Figure::higher(
                "leaves_per_s",
                "leaves/s",
                p.get("leaves") as f64 / d,
            ));
            out.push(Figure::lower(
                "join_event_p50_ms",
                "join-to-event p50 (ms)",
                lat(0.5),
            ));
            out.push(
                Figure::lower("join_event_p99_ms", "join-to-event p99 (ms)", lat(0.99))
                    .target("<= 10"),
            );
            out.push(Figure::lower(
                "join_event_p999_ms",
                "join-to-event p999 (ms)",
                lat(0.999),
            ));
            out.push(Figure::lower(
                "errors",
                "failed sessions",
                p.get("errors") as f64,
            ));
        }
        Kind::Fanout => {
            let updates = p.get("updates") as f64;
            let deliveries = p.get("deliveries") as f64;
            out.push(Figure::higher(
                "updates_per_s",
                "updates/s sent",
                updates / d,
            ));
            out.push(
                Figure::higher("deliveries_per_s", "deliveries/s", deliveries / d)
                    .target(">= 1,000,000"),
            );
            out.push(Figure::higher(
                "delivered_pct",
                "delivered (% of updates x members)",
                100.0 * deliveries / (updates * connected).max(1.0),
            ));
            out.push(Figure::lower(
                "delivery_p50_ms",
                "delivery latency p50 (ms)",
                lat(0.5),
            ));
            out.push(Figure::lower(
                "delivery_p99_ms",
                "delivery latency p99 (ms)",
                lat(0.99),
            ));
            out.push(Figure::lower(
                "delivery_p999_ms",
                "delivery latency p999 (ms)",
                lat(0.999),
            ));
            out.push(Figure::higher(
                "deliveries_per_cpu_s",
                "deliveries per server CPU-second",
                deliveries / d / cores,
            ));
        }
    }
    out.push(Figure::lower(
        "server_cpu_cores",
        "server CPU (cores busy)",
        cores,
    ));
    if w.redis_cpu_secs.is_finite() {
        out.push(Figure::lower(
            "redis_cpu_cores",
            "redis-server CPU (cores busy)",
            w.redis_cpu_secs / w.secs,
        ));
    }
    if w.count_errors.is_finite() {
        out.push(
            Figure::lower(
                "count_errors",
                "rooms with a wrong count (all nodes)",
                w.count_errors,
            )
            .target("0"),
        );
    }
    out.push(Figure::lower(
        "closed_by_server",
        "sockets closed by the server",
        p.get("closed_by_server") as f64,
    ));
    out
}
