//! `activenow-bench server-api`: the server API's reads at one big room. A room of
//! `--members` identities (one connection each, a small state) is written straight into the
//! store of an `activenow` server started in this process on 127.0.0.1 (memory, or Redis on
//! a fresh `redis-server`), then `--requests` of each call are timed over loopback HTTP with
//! keep-alive connections (`--concurrency` of them at once):
//!
//! - `GET /v1/users/{id}` (where is user X, a random member each time);
//! - `GET /v1/rooms/{room}` (count, connections, since);
//! - `GET /v1/rooms/{room}/members?limit=L` (the first page);
//! - the same with `cursor=` (a walk of the whole room, page after page, from the start
//!   again at its end);
//! - `GET /v1/rooms/{room}/members?limit=1000` (the largest page, `MEMBERS_PAGE_MAX`).
//!
//! Filling through the store, not through sockets: N sockets joining one room would deliver
//! N²/2 join events (5·10⁹ for 100,000), which measures fan-out, not these reads. The store
//! calls are the ones a join makes (on Redis the join script and both indexes), so the data
//! is laid out as a real room's. Every answer is checked (status, count, page size).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use activenow::{AppState, Server, Settings};
use activenow_engine::store::JoinOutcome;
use activenow_engine::{Backend, ConnId, Identity, Member, Room};
use anyhow::{bail, Context};
use clap::Args;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::http::Http;
use crate::report::percentile_ms;

const ROOM: &str = "big";
const KEY: &str = "bench-key";

#[derive(Args, Clone, Debug)]
pub struct ServerApiArgs {
    /// Members of the room [default: 100000].
    #[arg(long, default_value_t = 100_000)]
    pub members: usize,
    /// Timed requests of each call [default: 2000].
    #[arg(long, default_value_t = 2000)]
    pub requests: usize,
    /// Keep-alive connections sending requests at once (each waits for its answer)
    /// [default: 1].
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// `limit` of the timed member pages [default: 100].
    #[arg(long, default_value_t = 100)]
    pub page_limit: usize,
    /// The server on the Redis backend, on a fresh redis-server.
    #[arg(long)]
    pub redis: bool,
    /// The redis-server binary for --redis.
    #[arg(long, default_value = "redis-server")]
    pub redis_server: String,
    /// Store joins in flight while filling [default: 256].
    #[arg(long, default_value_t = 256)]
    pub fill_concurrency: usize,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

fn identity(i: usize) -> String {
    format!("user-{i:06}")
}

pub async fn main(args: ServerApiArgs) -> anyhow::Result<()> {
    if args.members == 0 || args.requests == 0 || args.concurrency == 0 {
        bail!("--members, --requests and --concurrency must be positive");
    }
    let mut _redis = None;
    let backend = if args.redis {
        let (target, url) = crate::target::launch_redis(&args.redis_server).await?;
        _redis = Some(target);
        // Members written here are refreshed by no reaper tick: a lookback of a day keeps
        // any sweep away from them for the run.
        let mut options =
            activenow_redis::RedisOptions::new(&url, "bench", Duration::from_secs(86_400));
        options.command_timeout = Duration::from_secs(10);
        activenow_redis::connect(&options)
            .await
            .map_err(|e| anyhow::anyhow!("redis: {e}"))?
    } else {
        Backend::memory()
    };
    let backend_name = backend.name;
    let presence = backend.presence.clone();
    let settings = Settings {
        bind: "127.0.0.1".into(),
        port: 0,
        node_id: "bench".into(),
        api_key: KEY.into(),
        presence_ttl: 86_400,
        ..Settings::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = Server::start(listener, AppState::new(settings, backend))?;
    let addr = server.addr;

    let room = Room::parse(ROOM).map_err(|e| anyhow::anyhow!("room: {e}"))?;
    let started = Instant::now();
    let failed = AtomicU64::new(0);
    let base = activenow_engine::clock::now_ms();
    futures_util::stream::iter(0..args.members)
        .map(|i| {
            let (presence, room) = (presence.clone(), room.clone());
            async move {
                let mut state = serde_json::Map::new();
                state.insert("name".into(), json!(format!("Member {i}")));
                let member = Member {
                    conn: ConnId::new(&format!("bench.{i}")),
                    identity: Identity::new(&identity(i)),
                    state,
                    joined_at_ms: base + i as u64,
                    updated_at_ms: base + i as u64,
                    epoch: 1,
                };
                presence.join(&room, member, None).await
            }
        })
        .buffer_unordered(args.fill_concurrency.max(1))
        .for_each(|r| {
            if !matches!(r, Ok(JoinOutcome::Joined(_))) {
                failed.fetch_add(1, Ordering::Relaxed);
            }
            async {}
        })
        .await;
    let fill_s = started.elapsed().as_secs_f64();
    if failed.load(Ordering::Relaxed) > 0 {
        bail!("{} store joins failed", failed.load(Ordering::Relaxed));
    }
    eprintln!(
        "{backend_name}: {} members in {fill_s:.1} s ({:.0}/s)",
        args.members,
        args.members as f64 / fill_s
    );

    let auth = format!("Bearer {KEY}");
    let info = get_json(addr, &auth, &format!("/v1/rooms/{ROOM}")).await?;
    if info["count"] != json!(args.members) {
        bail!("room count {} != {}", info["count"], args.members);
    }

    let limit = args.page_limit;
    let page_max = 1000.min(args.members);
    let calls: Vec<(&str, Call)> = vec![
        ("where_is_user", Call::User),
        ("room_info", Call::Room),
        ("first_page", Call::FirstPage(limit)),
        ("page_walk", Call::Walk(limit)),
        ("first_page_1000", Call::FirstPage(page_max)),
    ];
    let mut figures = serde_json::Map::new();
    println!(
        "{backend_name}, {} members, {} requests each over {} connection(s), page limit {limit}",
        args.members, args.requests, args.concurrency
    );
    println!(
        "{:<18} {:>9} {:>9} {:>9} {:>9}",
        "call", "p50 ms", "p99 ms", "max ms", "req/s"
    );
    for (name, call) in calls {
        let ctx = Arc::new(CallCtx {
            addr,
            auth: auth.clone(),
            members: args.members,
            next: AtomicU64::new(0),
        });
        // Warm-up: connections open, scripts loaded, allocator warm.
        run_call(&ctx, &call, args.concurrency, 50.min(args.requests)).await?;
        ctx.next.store(0, Ordering::Relaxed);
        let started = Instant::now();
        let mut samples = run_call(&ctx, &call, args.concurrency, args.requests).await?;
        let secs = started.elapsed().as_secs_f64();
        samples.sort_unstable();
        let (p50, p99) = (percentile_ms(&samples, 0.5), percentile_ms(&samples, 0.99));
        let max = percentile_ms(&samples, 1.0);
        let rate = samples.len() as f64 / secs;
        println!("{name:<18} {p50:>9.3} {p99:>9.3} {max:>9.3} {rate:>9.0}");
        figures.insert(
            name.to_owned(),
            json!({"p50_ms": p50, "p99_ms": p99, "max_ms": max, "requests_per_s": rate}),
        );
    }
    server.shutdown(Duration::from_secs(2)).await;
    if let Some(path) = &args.json {
        let doc = json!({
            "scenario": "server-api",
            "backend": backend_name,
            "members": args.members,
            "requests": args.requests,
            "concurrency": args.concurrency,
            "page_limit": limit,
            "fill_seconds": fill_s,
            "figures": figures,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&doc)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

enum Call {
    User,
    Room,
    FirstPage(usize),
    Walk(usize),
}

struct CallCtx {
    addr: SocketAddr,
    auth: String,
    members: usize,
    /// Request counter: picks the member of `User`.
    next: AtomicU64,
}

/// `requests` requests of `call` over `concurrency` connections; their latencies in µs.
async fn run_call(
    ctx: &Arc<CallCtx>,
    call: &Call,
    concurrency: usize,
    requests: usize,
) -> anyhow::Result<Vec<u32>> {
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..concurrency {
        let n = requests / concurrency + usize::from(c < requests % concurrency);
        let ctx = ctx.clone();
        let call = match call {
            Call::User => Call::User,
            Call::Room => Call::Room,
            Call::FirstPage(l) => Call::FirstPage(*l),
            Call::Walk(l) => Call::Walk(*l),
        };
        tasks.spawn(async move { connection(&ctx, &call, n).await });
    }
    let mut out = Vec::with_capacity(requests);
    while let Some(r) = tasks.join_next().await {
        out.extend(r??);
    }
    Ok(out)
}

/// One keep-alive connection's share of the requests.
async fn connection(ctx: &CallCtx, call: &Call, n: usize) -> anyhow::Result<Vec<u32>> {
    let mut http = Http::connect(ctx.addr).await?;
    let headers = [("authorization", ctx.auth.as_str())];
    let mut cursor: Option<String> = None;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let path = match call {
            Call::User => {
                // A multiplicative hash spreads the members over the room's key space.
                let k = ctx.next.fetch_add(1, Ordering::Relaxed);
                let i = (k.wrapping_mul(2_654_435_761) % ctx.members as u64) as usize;
                format!("/v1/users/{}", identity(i))
            }
            Call::Room => format!("/v1/rooms/{ROOM}"),
            Call::FirstPage(l) => format!("/v1/rooms/{ROOM}/members?limit={l}"),
            Call::Walk(l) => match &cursor {
                Some(c) => format!("/v1/rooms/{ROOM}/members?limit={l}&cursor={c}"),
                None => format!("/v1/rooms/{ROOM}/members?limit={l}"),
            },
        };
        let t = Instant::now();
        let (status, body) = http.request("GET", &path, &headers, b"").await?;
        out.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        if status != 200 {
            bail!("{path}: {status} {}", String::from_utf8_lossy(&body));
        }
        let v: Value = serde_json::from_slice(&body)?;
        match call {
            Call::User if v["online"] != json!(true) => bail!("{path}: {v}"),
            Call::Room if v["count"] != json!(ctx.members) => bail!("{path}: {v}"),
            Call::FirstPage(l) | Call::Walk(l) => {
                let got = v["members"].as_array().map_or(0, Vec::len);
                if got == 0 || got > *l {
                    bail!("{path}: a page of {got}");
                }
                if let Call::Walk(_) = call {
                    cursor = v["next_cursor"].as_str().map(str::to_owned);
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

async fn get_json(addr: SocketAddr, auth: &str, path: &str) -> anyhow::Result<Value> {
    let mut http = Http::connect(addr).await?;
    let (status, body) = http
        .request("GET", path, &[("authorization", auth)], b"")
        .await?;
    if status != 200 {
        bail!("{path}: {status}");
    }
    Ok(serde_json::from_slice(&body)?)
}
