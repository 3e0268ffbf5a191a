//! The client side of every scenario, for one generator process: connect its share of the
//! sockets ([`setup`]), then load the server for the warm-up and the measured window
//! ([`Running::measure`]) and return what the clients counted ([`Partial`]).

mod churn;
mod fanout;
mod sockets;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::cli::LoadArgs;
use crate::conn::{self, Sources};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Idle,
    Heartbeat,
    Churn,
    Fanout,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Idle => "idle",
            Kind::Heartbeat => "heartbeat",
            Kind::Churn => "churn",
            Kind::Fanout => "fanout",
        }
    }

    /// Long-lived client sockets of the whole run (all generator processes).
    pub fn conns(self, load: &LoadArgs) -> usize {
        match self {
            Kind::Idle => load.conns.unwrap_or(15_000),
            Kind::Heartbeat | Kind::Churn => load.conns.unwrap_or(10_000),
            Kind::Fanout => load.members,
        }
    }

    pub fn rooms(self, load: &LoadArgs) -> usize {
        match self {
            Kind::Fanout => 1,
            _ => load
                .rooms
                .unwrap_or(self.conns(load) / 100)
                .clamp(1, self.conns(load).max(1)),
        }
    }

    /// Every room's count once all long-lived sockets are in; `None` where it moves (churn).
    /// Socket `g` of the whole run (over all generators) is in room `g % rooms`, one
    /// identity each.
    pub fn expected_counts(self, load: &LoadArgs) -> Option<BTreeMap<String, u64>> {
        match self {
            Kind::Churn => None,
            Kind::Fanout => Some(BTreeMap::from([(
                fanout::ROOM.to_owned(),
                self.conns(load) as u64,
            )])),
            Kind::Idle | Kind::Heartbeat => {
                let (n, rooms) = (self.conns(load), self.rooms(load));
                Some(
                    (0..rooms)
                        .map(|r| {
                            let count = n / rooms + usize::from(r < n % rooms);
                            (format!("room-{r}"), count as u64)
                        })
                        .collect(),
                )
            }
        }
    }

    /// Sockets open at once besides the long-lived ones (churning sessions).
    pub fn extra_fds(self, load: &LoadArgs) -> usize {
        match self {
            Kind::Churn => (load.rate as u64 * (load.hold_ms + 1000) / 1000) as usize,
            _ => 64,
        }
    }
}

/// What one generator process's clients counted in the measured window.
#[derive(Default, Serialize, Deserialize, Debug)]
pub struct Partial {
    pub counters: BTreeMap<String, u64>,
    /// Latency samples, microseconds.
    pub latencies_us: Vec<u32>,
}

impl Partial {
    pub fn merge(&mut self, other: Partial) {
        for (k, v) in other.counters {
            *self.counters.entry(k).or_default() += v;
        }
        self.latencies_us.extend(other.latencies_us);
    }

    pub fn get(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}

/// Shared by the tasks of one generator process.
#[derive(Default)]
pub(crate) struct Ctx {
    /// Set during the measured window only.
    pub recording: AtomicBool,
    pub stop: CancellationToken,
    pub frames_in: AtomicU64,
    pub hb_sent: AtomicU64,
    pub deliveries: AtomicU64,
    pub joins: AtomicU64,
    pub leaves: AtomicU64,
    pub updates: AtomicU64,
    pub errors: AtomicU64,
    pub closed: AtomicU64,
    pub samples: Mutex<Vec<u32>>,
}

impl Ctx {
    pub fn recording(&self) -> bool {
        self.recording.load(Ordering::Relaxed)
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn keep_samples(&self, mut local: Vec<u32>) {
        if !local.is_empty() {
            let mut all = self.samples.lock().unwrap_or_else(|e| e.into_inner());
            all.append(&mut local);
        }
    }
}

/// This process's part of a run.
#[derive(Clone, Copy, Debug)]
pub struct Share {
    pub index: usize,
    pub count: usize,
}

impl Share {
    /// This process's part of `total`.
    pub fn of(&self, total: usize) -> usize {
        total / self.count + usize::from(self.index < total % self.count)
    }
}

/// A generator process's connected sockets, ready to measure.
pub struct Running {
    kind: Kind,
    load: LoadArgs,
    servers: Vec<SocketAddr>,
    share: Share,
    sources: Sources,
    ctx: Arc<Ctx>,
    tasks: tokio::task::JoinSet<()>,
    pub connected: usize,
}

/// Connects this process's share of the long-lived sockets, socket `g` of the whole run to
/// node `g % nodes`.
pub async fn setup(
    kind: Kind,
    load: &LoadArgs,
    servers: &[SocketAddr],
    share: Share,
) -> anyhow::Result<Running> {
    anyhow::ensure!(!servers.is_empty(), "no server to drive");
    let ctx = Arc::new(Ctx::default());
    let sources = Sources::for_worker(share.index, load.per_source);
    let n = share.of(kind.conns(load));
    let rooms = kind.rooms(load);
    let paths: Vec<(SocketAddr, String)> = (0..n)
        .map(|i| {
            let global = i * share.count + share.index;
            let path = match kind {
                Kind::Fanout => conn::room_path(fanout::ROOM, &format!("fan-{}-{i}", share.index)),
                _ => conn::room_path(
                    &format!("room-{}", global % rooms),
                    &format!("s-{}-{i}", share.index),
                ),
            };
            (servers[global % servers.len()], path)
        })
        .collect();
    let mut connected = futures_util::stream::iter(paths.into_iter().enumerate())
        .map(|(i, (server, path))| async move {
            let client = if kind == Kind::Fanout {
                sockets::Client::Raw(conn::connect_raw(server, sources.addr(i), &path).await?)
            } else {
                let mut ws = conn::connect(server, sources.addr(i), &path).await?;
                conn::first_text(&mut ws, Duration::from_secs(30)).await?;
                sockets::Client::Ws(Box::new(ws))
            };
            anyhow::Ok((i, client))
        })
        .buffer_unordered(load.connect_concurrency.max(1));
    let mut tasks = tokio::task::JoinSet::new();
    let mut count = 0;
    let mut failures = 0usize;
    let mut first_error = None;
    while let Some(result) = connected.next().await {
        match result {
            Ok((i, client)) => {
                count += 1;
                sockets::spawn(kind, load, i, client, ctx.clone(), &mut tasks);
            }
            Err(e) => {
                failures += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        eprintln!(
            "generator {}: {failures} of {n} connections failed; first: {e:#}",
            share.index
        );
        if failures * 100 > n {
            anyhow::bail!("more than 1% of the connections failed: {e:#}");
        }
    }
    Ctx::add(&ctx.errors, failures as u64);
    Ok(Running {
        kind,
        load: load.clone(),
        servers: servers.to_vec(),
        share,
        sources,
        ctx,
        tasks,
        connected: count,
    })
}

impl Running {
    /// Loads the server for the warm-up, records for `--duration`, then stops every client.
    pub async fn measure(mut self) -> Partial {
        let ctx = self.ctx.clone();
        let driver = match self.kind {
            Kind::Churn => Some(tokio::spawn(churn::drive(
                self.load.clone(),
                self.servers.clone(),
                self.share,
                self.sources,
                self.connected,
                ctx.clone(),
            ))),
            Kind::Fanout if self.share.index == 0 => Some(tokio::spawn(fanout::drive(
                self.load.clone(),
                self.servers[0],
                self.share,
                ctx.clone(),
            ))),
            _ => None,
        };
        tokio::time::sleep(Duration::from_secs(self.load.warmup)).await;
        ctx.recording.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(self.load.duration)).await;
        ctx.recording.store(false, Ordering::Relaxed);
        ctx.stop.cancel();
        if let Some(d) = driver {
            let _ = d.await;
        }
        while self.tasks.join_next().await.is_some() {}
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut p = Partial::default();
        for (name, counter) in [
            ("frames_in", &ctx.frames_in),
            ("hb_sent", &ctx.hb_sent),
            ("deliveries", &ctx.deliveries),
            ("joins", &ctx.joins),
            ("leaves", &ctx.leaves),
            ("updates", &ctx.updates),
            ("errors", &ctx.errors),
            ("closed_by_server", &ctx.closed),
        ] {
            p.counters.insert(name.into(), get(counter));
        }
        p.counters.insert("connected".into(), self.connected as u64);
        p.latencies_us =
            std::mem::take(&mut *ctx.samples.lock().unwrap_or_else(|e| e.into_inner()));
        p
    }
}
