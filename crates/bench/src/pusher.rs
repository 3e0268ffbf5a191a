//! `activenow-bench pusher`: Pusher Channels protocol 7 load against any Pusher server at
//! --url (ActiveNow, soketi, sockudo, ...), spoken by this generator over raw WebSocket
//! frames (`/app/{key}?protocol=7&client=js&version=8.4.0`), presence subscriptions signed
//! here with the app secret as an app's auth endpoint would, server events sent through
//! the HTTP API signed as Pusher's server SDKs sign them.
//!
//! Three modes:
//! - `idle`: `--conns` sockets, each a member of one of `--rooms` presence channels; the
//!   server's RSS (summed over `--server-pid`) above its RSS before connecting, per member,
//!   once all are subscribed and again after `--duration` s of idling (pings answered).
//! - `churn`: `--conns` watchers over `--rooms` presence channels; `--rate` joins+leaves per
//!   second (half joins, half leaves): fresh sockets subscribe as a new user whose id
//!   carries the microsecond of the subscribe's send (`bench-j<t0>-<n>`), hold `--hold-ms`,
//!   unsubscribe and close; the watchers time `pusher_internal:member_added` from that send
//!   to their read.
//! - `fanout`: `--members` members of one presence channel; `--events` HTTP
//!   `POST /apps/{id}/events` per second whose `data` carries its send time
//!   (`bench-t<us>`); deliveries/s, the share delivered, latency p50/p99.
//!
//! Every figure covers the measured window after the warm-up. One generator process (the
//! run refuses more sockets than its fd limit allows); loopback only, like every scenario.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use clap::{Args, ValueEnum};
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::conn::{self, client_frame, now_us, RawWs, Sources, OP_CLOSE, OP_TEXT};
use crate::http::Http;
use crate::report::percentile_ms;
use crate::target;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    Idle,
    Churn,
    Fanout,
}

#[derive(Args, Clone, Debug)]
pub struct PusherArgs {
    /// idle (RSS per presence member), churn (member_added latency), fanout (HTTP events to
    /// one channel's members).
    #[arg(long, value_enum)]
    pub mode: Mode,
    /// The Pusher server, e.g. http://127.0.0.1:6001 (its WebSocket and HTTP API port).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The server's pid(s), to read RSS and CPU from /proc; a server of several processes
    /// is the sum (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    #[arg(long, default_value = "app-id")]
    pub app_id: String,
    #[arg(long, default_value = "app-key")]
    pub key: String,
    #[arg(long, default_value = "app-secret")]
    pub secret: String,
    /// idle: members; churn: watchers [default: idle 15000, churn 1000].
    #[arg(long)]
    pub conns: Option<usize>,
    /// Presence channels the sockets are spread over [default: conns / 100, at least 1].
    #[arg(long)]
    pub rooms: Option<usize>,
    /// Seconds measured (idle: seconds idling after all are subscribed) [default: 20].
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// churn, fanout: seconds of load before measuring [default: 3].
    #[arg(long, default_value_t = 3)]
    pub warmup: u64,
    /// churn: joins+leaves per second, half of each (every joiner leaves after --hold-ms)
    /// [default: 1000].
    #[arg(long, default_value_t = 1000)]
    pub rate: u32,
    /// churn: milliseconds a joiner stays subscribed [default: 1000].
    #[arg(long, default_value_t = 1000)]
    pub hold_ms: u64,
    /// fanout: members of the channel [default: 1000].
    #[arg(long, default_value_t = 1000)]
    pub members: usize,
    /// fanout: HTTP events per second [default: 100].
    #[arg(long, default_value_t = 100)]
    pub events: u32,
    /// fanout: keep-alive HTTP connections the events are sent over [default: 4].
    #[arg(long, default_value_t = 4)]
    pub http_conns: usize,
    /// Client sockets per source address 127.0.0.x [default: 10000].
    #[arg(long, default_value_t = 10_000)]
    pub per_source: usize,
    /// Connection attempts (and subscriptions) in flight while connecting [default: 200].
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

impl PusherArgs {
    fn conns(&self) -> usize {
        match self.mode {
            Mode::Idle => self.conns.unwrap_or(15_000),
            Mode::Churn => self.conns.unwrap_or(1_000),
            Mode::Fanout => self.members,
        }
    }

    fn rooms(&self) -> usize {
        match self.mode {
            Mode::Fanout => 1,
            _ => self
                .rooms
                .unwrap_or(self.conns() / 100)
                .clamp(1, self.conns().max(1)),
        }
    }

    fn path(&self) -> String {
        format!(
            "/app/{}?protocol=7&client=js&version=8.4.0",
            conn::escape(&self.key)
        )
    }
}

// ---------------------------------------------------------------------------------------
// Signatures

type HmacSha256 = Hmac<Sha256>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac_hex(secret: &str, message: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(message.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// A presence subscription as an app's auth endpoint signs it:
/// `key:hex(HMAC-SHA256(secret, "socket_id:channel:channel_data"))`.
fn presence_subscribe(
    key: &str,
    secret: &str,
    socket_id: &str,
    channel: &str,
    user: &str,
) -> String {
    let channel_data = json!({"user_id": user, "user_info": {}}).to_string();
    let sig = hmac_hex(secret, &format!("{socket_id}:{channel}:{channel_data}"));
    json!({
        "event": "pusher:subscribe",
        "data": {"channel": channel, "auth": format!("{key}:{sig}"), "channel_data": channel_data},
    })
    .to_string()
}

/// The path and query of a signed HTTP API call (Pusher's auth_version 1.0).
fn signed_path(app_id: &str, key: &str, secret: &str, method: &str, body: &[u8]) -> String {
    let path = format!("/apps/{app_id}/events");
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let body_md5 = hex(&activenow::protocol::pusher::auth::md5(body));
    // Already in sorted key order.
    let query = format!(
        "auth_key={}&auth_timestamp={timestamp}&auth_version=1.0&body_md5={body_md5}",
        conn::escape(key)
    );
    let sig = hmac_hex(secret, &format!("{method}\n{path}\n{query}"));
    format!("{path}?{query}&auth_signature={sig}")
}

// ---------------------------------------------------------------------------------------
// A Pusher client on a raw WebSocket

const OP_PING: u8 = 9;
const OP_PONG: u8 = 10;
const PONG: &str = r#"{"event":"pusher:pong","data":{}}"#;

struct Client {
    raw: RawWs,
    socket_id: String,
}

/// The socket id in `pusher:connection_established` (whose `data` is a JSON string).
fn socket_id(hello: &str) -> anyhow::Result<String> {
    let v: Value = serde_json::from_str(hello)?;
    anyhow::ensure!(
        v["event"] == "pusher:connection_established",
        "expected pusher:connection_established, got {hello}"
    );
    let data: Value = match &v["data"] {
        Value::String(s) => serde_json::from_str(s)?,
        other => other.clone(),
    };
    data["socket_id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no socket_id in {hello}"))
}

/// What a client read: text frames are handed over, pings answered here.
enum Read {
    Text(String),
    Closed,
}

impl Client {
    async fn connect(server: SocketAddr, source: Ipv4Addr, path: &str) -> anyhow::Result<Client> {
        let (mut raw, hello) = conn::connect_raw_hello(server, source, path).await?;
        // The upgrade's 64 KiB buffer is for fast readers; an idle member needs little.
        let mut small = BytesMut::with_capacity(2048);
        small.extend_from_slice(&raw.buf);
        raw.buf = small;
        let socket_id = socket_id(&hello)?;
        Ok(Client { raw, socket_id })
    }

    async fn send(&mut self, text: &str) -> anyhow::Result<()> {
        self.raw
            .stream
            .write_all(&client_frame(OP_TEXT, text.as_bytes()))
            .await?;
        Ok(())
    }

    /// The next text frame that is not a `pusher:ping` (answered), or the end.
    async fn next(&mut self) -> anyhow::Result<Read> {
        loop {
            while let Some(f) = RawWs::frame(&self.raw.buf) {
                let frame = self.raw.buf.split_to(f.len);
                let payload = &frame[f.payload];
                match f.opcode {
                    OP_TEXT => {
                        if is_ping(payload) {
                            self.send(PONG).await?;
                            continue;
                        }
                        return Ok(Read::Text(String::from_utf8_lossy(payload).into_owned()));
                    }
                    OP_PING => {
                        self.raw
                            .stream
                            .write_all(&client_frame(OP_PONG, payload))
                            .await?
                    }
                    OP_CLOSE => return Ok(Read::Closed),
                    _ => {}
                }
            }
            if self.raw.stream.read_buf(&mut self.raw.buf).await? == 0 {
                return Ok(Read::Closed);
            }
        }
    }

    /// Subscribes to a presence channel as `user` and waits for the answer.
    async fn join(
        &mut self,
        args: &PusherArgs,
        channel: &str,
        user: &str,
        ctx: &Ctx,
    ) -> anyhow::Result<()> {
        let msg = presence_subscribe(&args.key, &args.secret, &self.socket_id, channel, user);
        self.send(&msg).await?;
        let wait = async {
            loop {
                match self.next().await? {
                    Read::Text(t) if t.contains("subscription_succeeded") => return Ok(()),
                    Read::Text(t)
                        if t.contains("subscription_error") || t.contains("pusher:error") =>
                    {
                        anyhow::bail!("subscription refused: {t}")
                    }
                    // member_added of the others, while the join is under way.
                    Read::Text(t) => ctx.watch(&t),
                    Read::Closed => anyhow::bail!("closed while subscribing"),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .map_err(|_| anyhow::anyhow!("no subscription_succeeded within 30 s"))?
    }
}

fn is_ping(payload: &[u8]) -> bool {
    payload.len() < 80 && memfind(payload, b"pusher:ping").is_some()
}

fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The digits after `marker` in `text`.
fn number_after(text: &str, marker: &str) -> Option<u64> {
    let at = text.find(marker)? + marker.len();
    let digits = &text[at..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// A churning joiner's user id carries the microsecond its subscribe was sent.
const JOINER: &str = "bench-j";
/// A fan-out event's data carries the microsecond it was sent.
const SENT: &str = "bench-t";

/// The send time of a joiner's `member_added`.
fn member_added_sent_us(text: &str) -> Option<u64> {
    if !text.contains("member_added") {
        return None;
    }
    number_after(text, JOINER)
}

// ---------------------------------------------------------------------------------------
// Shared counters

#[derive(Default)]
struct Ctx {
    stop: CancellationToken,
    /// Send times (us) that count: [from, to) is the measured window; 0 = not yet set.
    window_from: AtomicU64,
    window_to: AtomicU64,
    measuring: AtomicBool,
    subscribed: AtomicU64,
    failed: AtomicU64,
    closed: AtomicU64,
    joins: AtomicU64,
    join_failed: AtomicU64,
    leaves: AtomicU64,
    /// churn: member_added frames watchers should see for the window's joins.
    expected: AtomicU64,
    received: AtomicU64,
    events_sent: AtomicU64,
    events_refused: AtomicU64,
    samples: Mutex<Vec<u32>>,
    /// churn: watchers per channel, by channel index.
    watchers: Vec<u64>,
}

impl Ctx {
    fn in_window(&self, sent_us: u64) -> bool {
        let from = self.window_from.load(Ordering::Relaxed);
        let to = self.window_to.load(Ordering::Relaxed);
        from != 0 && sent_us >= from && (to == 0 || sent_us < to)
    }

    /// A watcher's frame: a window's joiner's member_added is timed.
    fn watch(&self, text: &str) {
        if let Some(t0) = member_added_sent_us(text) {
            if self.in_window(t0) {
                self.received.fetch_add(1, Ordering::Relaxed);
                self.sample(t0);
            }
        }
    }

    fn sample(&self, sent_us: u64) {
        let us = now_us().saturating_sub(sent_us).min(u64::from(u32::MAX)) as u32;
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(us);
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

fn channel_name(mode: Mode, room: usize) -> String {
    match mode {
        Mode::Idle => format!("presence-idle-{room}"),
        Mode::Churn => format!("presence-churn-{room}"),
        Mode::Fanout => "presence-fanout".to_owned(),
    }
}

fn rss_kib(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&p| target::rss_kib(p).ok()).sum()
}

fn cpu_secs(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&p| target::cpu_secs(p)).sum()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// The run

pub async fn main(args: PusherArgs) -> anyhow::Result<()> {
    let fd_limit = conn::raise_fd_limit();
    let server = target::parse_addr(&args.url)?;
    let conns = args.conns();
    let extra = match args.mode {
        Mode::Churn => (u64::from(args.rate / 2) * (args.hold_ms + 2000) / 1000) as usize,
        _ => args.http_conns + 16,
    };
    anyhow::ensure!(
        (conns + extra + 64) as u64 <= fd_limit,
        "{conns} sockets + {extra} need more fds than this process may open ({fd_limit}): \
         raise `ulimit -n` or lower --conns"
    );
    let rooms = args.rooms();
    let mut watchers = vec![0u64; rooms];
    for i in 0..conns {
        watchers[i % rooms] += 1;
    }
    let ctx = Arc::new(Ctx {
        watchers,
        ..Ctx::default()
    });
    let load_start = loadavg();
    let rss_base = rss_kib(&args.server_pid);
    let started = Instant::now();
    eprintln!(
        "pusher {:?}: {conns} sockets over {rooms} channel(s) against {} (fd limit {fd_limit})",
        args.mode, args.url
    );
    let sources = Sources::for_worker(0, args.per_source);
    let mut tasks = tokio::task::JoinSet::new();
    let args = Arc::new(args);

    // The long-lived members, connected and subscribed `connect_concurrency` at a time.
    {
        let mut joining = futures_util::stream::iter(0..conns)
            .map(|i| {
                let (args, ctx) = (args.clone(), ctx.clone());
                async move {
                    let channel = channel_name(args.mode, i % rooms);
                    let user = format!("u{i}");
                    let mut c = Client::connect(server, sources.addr(i), &args.path()).await?;
                    c.join(&args, &channel, &user, &ctx).await?;
                    anyhow::Ok(c)
                }
            })
            .buffer_unordered(args.connect_concurrency.max(1));
        let mut first_error = None;
        while let Some(r) = joining.next().await {
            match r {
                Ok(c) => {
                    Ctx::add(&ctx.subscribed, 1);
                    let (ctx, mode) = (ctx.clone(), args.mode);
                    tasks.spawn(member(c, mode, ctx));
                }
                Err(e) => {
                    Ctx::add(&ctx.failed, 1);
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            eprintln!(
                "{} socket(s) failed to connect or subscribe; the first: {e:#}",
                Ctx::get(&ctx.failed)
            );
        }
    }
    let setup_secs = started.elapsed().as_secs_f64();
    let subscribed = Ctx::get(&ctx.subscribed);
    eprintln!("{subscribed} subscribed in {setup_secs:.1} s");

    let mut figures = json!({
        "mode": format!("{:?}", args.mode).to_lowercase(),
        "url": args.url,
        "sockets": conns,
        "channels": rooms,
        "subscribed": subscribed,
        "failed": Ctx::get(&ctx.failed),
        "setup_seconds": setup_secs,
        "loadavg_start": load_start,
    });
    match args.mode {
        Mode::Idle => idle(&args, &ctx, rss_base, &mut figures).await,
        Mode::Churn => churn(&args, server, &ctx, &mut figures).await,
        Mode::Fanout => fanout(&args, server, &ctx, &mut figures).await,
    }
    figures["loadavg_end"] = json!(loadavg());
    figures["closed_by_server"] = json!(Ctx::get(&ctx.closed));
    ctx.stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    println!("{}", serde_json::to_string_pretty(&figures)?);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&figures)? + "\n")?;
    }
    Ok(())
}

/// A long-lived member: answers pings; a churn watcher times member_added; a fan-out member
/// counts and times the events.
async fn member(mut c: Client, mode: Mode, ctx: Arc<Ctx>) {
    loop {
        let read = tokio::select! {
            _ = ctx.stop.cancelled() => break,
            r = c.next() => r,
        };
        match read {
            Ok(Read::Text(t)) => match mode {
                Mode::Idle => {}
                Mode::Churn => ctx.watch(&t),
                Mode::Fanout => {
                    if let Some(sent) = number_after(&t, SENT) {
                        if ctx.in_window(sent) {
                            Ctx::add(&ctx.received, 1);
                            ctx.sample(sent);
                        }
                    }
                }
            },
            Ok(Read::Closed) | Err(_) => {
                Ctx::add(&ctx.closed, 1);
                return;
            }
        }
    }
    let _ = c.raw.stream.write_all(&client_frame(OP_CLOSE, &[])).await;
}

fn per_member_kib(rss: Option<u64>, base: Option<u64>, members: u64) -> Value {
    match (rss, base) {
        (Some(r), Some(b)) if members > 0 => json!((r as f64 - b as f64) / members as f64),
        _ => Value::Null,
    }
}

async fn idle(args: &PusherArgs, ctx: &Ctx, rss_base: Option<u64>, figures: &mut Value) {
    let members = Ctx::get(&ctx.subscribed);
    let rss_subscribed = rss_kib(&args.server_pid);
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    let rss_idle = rss_kib(&args.server_pid);
    let still = members.saturating_sub(Ctx::get(&ctx.closed));
    figures["rss_base_kib"] = json!(rss_base);
    figures["rss_subscribed_kib"] = json!(rss_subscribed);
    figures["rss_idle_kib"] = json!(rss_idle);
    figures["kib_per_member_subscribed"] = per_member_kib(rss_subscribed, rss_base, members);
    figures["kib_per_member_idle"] = per_member_kib(rss_idle, rss_base, members);
    figures["idle_seconds"] = json!(args.duration);
    figures["still_connected"] = json!(still);
}

/// Opens the measured window: send times from now on count.
async fn window(args: &PusherArgs, ctx: &Ctx, pids: &[u32]) -> (f64, Option<f64>) {
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let cpu0 = cpu_secs(pids);
    ctx.window_from.store(now_us(), Ordering::Relaxed);
    ctx.measuring.store(true, Ordering::Relaxed);
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    ctx.window_to.store(now_us(), Ordering::Relaxed);
    ctx.measuring.store(false, Ordering::Relaxed);
    let secs = t.elapsed().as_secs_f64();
    let cpu = match (cpu0, cpu_secs(pids)) {
        (Some(a), Some(b)) => Some((b - a) / secs * 100.0),
        _ => None,
    };
    // Late deliveries of the window's sends still count.
    tokio::time::sleep(Duration::from_secs(2)).await;
    (secs, cpu)
}

fn latencies(ctx: &Ctx, figures: &mut Value, prefix: &str) {
    let mut s = ctx
        .samples
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    s.sort_unstable();
    for (name, p) in [("p50", 0.5), ("p99", 0.99), ("p999", 0.999)] {
        let v = percentile_ms(&s, p);
        figures[format!("{prefix}_{name}_ms")] = if v.is_finite() { json!(v) } else { Value::Null };
    }
    figures["samples"] = json!(s.len());
}

async fn churn(args: &Arc<PusherArgs>, server: SocketAddr, ctx: &Arc<Ctx>, figures: &mut Value) {
    let driver = tokio::spawn(drive_churn(args.clone(), server, ctx.clone()));
    let (secs, cpu) = window(args, ctx, &args.server_pid).await;
    ctx.stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), driver).await;
    let (expected, received) = (Ctx::get(&ctx.expected), Ctx::get(&ctx.received));
    figures["joins_per_s"] = json!(Ctx::get(&ctx.joins) as f64 / secs);
    figures["leaves_per_s"] = json!(Ctx::get(&ctx.leaves) as f64 / secs);
    figures["joins_failed"] = json!(Ctx::get(&ctx.join_failed));
    figures["member_added_expected"] = json!(expected);
    figures["member_added_received"] = json!(received);
    figures["member_added_missing"] = json!(expected.saturating_sub(received));
    figures["server_cpu_percent"] = json!(cpu);
    figures["seconds"] = json!(secs);
    latencies(ctx, figures, "member_added");
}

async fn drive_churn(args: Arc<PusherArgs>, server: SocketAddr, ctx: Arc<Ctx>) {
    let joins_per_s = (f64::from(args.rate) / 2.0).max(1.0);
    let rooms = args.rooms();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / joins_per_s));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut joiners = tokio::task::JoinSet::new();
    // Past the watchers' addresses, and over many: each closed socket's port may sit in
    // TIME_WAIT for a minute.
    let sources = Sources::for_worker(0, args.per_source);
    let first = args.conns().div_ceil(sources.per_source) * sources.per_source;
    let mut n = 0usize;
    loop {
        tokio::select! {
            _ = ctx.stop.cancelled() => break,
            _ = tick.tick() => {
                let source = sources.addr(first + n % (8 * sources.per_source));
                let (args, ctx) = (args.clone(), ctx.clone());
                let room = (n * 7) % rooms;
                joiners.spawn(async move {
                    if let Err(e) = joiner(&args, server, source, room, n, &ctx).await {
                        if ctx.measuring.load(Ordering::Relaxed) {
                            let before = ctx.join_failed.fetch_add(1, Ordering::Relaxed);
                            if before < 3 {
                                eprintln!("churn joiner failed: {e:#}");
                            }
                        }
                    }
                });
                n += 1;
            }
            Some(_) = joiners.join_next(), if !joiners.is_empty() => {}
        }
    }
    while joiners.join_next().await.is_some() {}
}

async fn joiner(
    args: &PusherArgs,
    server: SocketAddr,
    source: Ipv4Addr,
    room: usize,
    n: usize,
    ctx: &Ctx,
) -> anyhow::Result<()> {
    let mut c = Client::connect(server, source, &args.path()).await?;
    let channel = channel_name(Mode::Churn, room);
    let t0 = now_us();
    let user = format!("{JOINER}{t0}-{n}");
    let counted = ctx.in_window(t0);
    let msg = presence_subscribe(&args.key, &args.secret, &c.socket_id, &channel, &user);
    c.send(&msg).await?;
    let ok = async {
        loop {
            match c.next().await? {
                Read::Text(t) if t.contains("subscription_succeeded") => return Ok(()),
                Read::Text(t) if t.contains("subscription_error") || t.contains("pusher:error") => {
                    anyhow::bail!("subscription refused: {t}")
                }
                Read::Text(_) => {}
                Read::Closed => anyhow::bail!("closed while subscribing"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), ok)
        .await
        .map_err(|_| anyhow::anyhow!("no subscription_succeeded within 10 s"))??;
    if counted {
        Ctx::add(&ctx.joins, 1);
        Ctx::add(&ctx.expected, ctx.watchers[room]);
    }
    // Hold (reading, so pings are answered and the socket buffer drains).
    let hold = tokio::time::sleep(Duration::from_millis(args.hold_ms));
    tokio::pin!(hold);
    loop {
        tokio::select! {
            _ = &mut hold => break,
            _ = ctx.stop.cancelled() => break,
            r = c.next() => if let Read::Closed = r? { anyhow::bail!("closed while holding") },
        }
    }
    let unsub = json!({"event": "pusher:unsubscribe", "data": {"channel": channel}}).to_string();
    c.send(&unsub).await?;
    c.raw
        .stream
        .write_all(&client_frame(OP_CLOSE, &1000u16.to_be_bytes()))
        .await?;
    if ctx.measuring.load(Ordering::Relaxed) {
        Ctx::add(&ctx.leaves, 1);
    }
    // Wait briefly for the server's close (the server then closes the TCP connection first).
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(Read::Text(_)) = c.next().await {}
    })
    .await;
    Ok(())
}

async fn fanout(args: &Arc<PusherArgs>, server: SocketAddr, ctx: &Arc<Ctx>, figures: &mut Value) {
    let mut senders = tokio::task::JoinSet::new();
    let conns = args.http_conns.max(1);
    for c in 0..conns {
        senders.spawn(send_events(args.clone(), server, ctx.clone(), c, conns));
    }
    let (secs, cpu) = window(args, ctx, &args.server_pid).await;
    ctx.stop.cancel();
    while senders.join_next().await.is_some() {}
    let members = Ctx::get(&ctx.subscribed);
    let sent = Ctx::get(&ctx.events_sent);
    let received = Ctx::get(&ctx.received);
    let expected = sent * members;
    figures["events_per_s"] = json!(sent as f64 / secs);
    figures["events_refused"] = json!(Ctx::get(&ctx.events_refused));
    figures["deliveries_per_s"] = json!(received as f64 / secs);
    figures["deliveries_expected"] = json!(expected);
    figures["deliveries"] = json!(received);
    figures["delivered_percent"] = if expected > 0 {
        json!(received as f64 * 100.0 / expected as f64)
    } else {
        Value::Null
    };
    figures["server_cpu_percent"] = json!(cpu);
    figures["seconds"] = json!(secs);
    latencies(ctx, figures, "delivery");
}

async fn send_events(
    args: Arc<PusherArgs>,
    server: SocketAddr,
    ctx: Arc<Ctx>,
    c: usize,
    conns: usize,
) {
    let Ok(mut http) = Http::connect(server).await else {
        Ctx::add(&ctx.events_refused, 1);
        return;
    };
    let per_conn = f64::from(args.events.max(1)) / conns as f64;
    let period = Duration::from_secs_f64(1.0 / per_conn);
    let start = tokio::time::Instant::now() + period.mul_f64(c as f64 / conns as f64);
    let mut tick = tokio::time::interval_at(start, period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let channel = channel_name(Mode::Fanout, 0);
    let mut first_error = true;
    loop {
        tokio::select! {
            _ = ctx.stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let t0 = now_us();
        let body =
            json!({"name": "bench", "channel": channel, "data": format!("{SENT}{t0}")}).to_string();
        let path = signed_path(
            &args.app_id,
            &args.key,
            &args.secret,
            "POST",
            body.as_bytes(),
        );
        let headers = [("content-type", "application/json")];
        let mut answer = http.request("POST", &path, &headers, body.as_bytes()).await;
        if answer.is_err() {
            // A server that closed the keep-alive connection (soketi's uWS does after some
            // answers): once more on a fresh one.
            match Http::connect(server).await {
                Ok(h) => http = h,
                Err(_) => return,
            }
            answer = http.request("POST", &path, &headers, body.as_bytes()).await;
        }
        let ok = matches!(answer, Ok((200, _)));
        if !ok && first_error {
            first_error = false;
            match &answer {
                Ok((status, body)) => {
                    eprintln!("event refused: {status} {}", String::from_utf8_lossy(body))
                }
                Err(e) => eprintln!("event failed: {e:#}"),
            }
        }
        if ctx.in_window(t0) {
            Ctx::add(
                if ok {
                    &ctx.events_sent
                } else {
                    &ctx.events_refused
                },
                1,
            );
        }
        if answer.is_err() {
            match Http::connect(server).await {
                Ok(h) => http = h,
                Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_pusher_documents() {
        // Pusher's documented example (pusher.com/docs/channels/library_auth_reference/auth-signatures).
        assert_eq!(
            hmac_hex("7ad3773142a6692b25b8", "1234.1234:private-foobar"),
            "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
        );
        let msg = presence_subscribe("k", "s", "1.2", "presence-x", "u1");
        let v: Value = serde_json::from_str(&msg).unwrap();
        let data = &v["data"];
        assert_eq!(data["channel_data"], r#"{"user_id":"u1","user_info":{}}"#);
        let expected = hmac_hex(
            "s",
            &format!("1.2:presence-x:{}", data["channel_data"].as_str().unwrap()),
        );
        assert_eq!(data["auth"], format!("k:{expected}"));
    }

    #[test]
    fn signed_api_path_has_the_sorted_parameters() {
        let p = signed_path("app-id", "app-key", "app-secret", "POST", b"{}");
        assert!(p.starts_with("/apps/app-id/events?auth_key=app-key&auth_timestamp="));
        assert!(p.contains(
            "&auth_version=1.0&body_md5=99914b932bd37a50b983c5e7c90ae93b&auth_signature="
        ));
    }

    #[test]
    fn reads_the_marks() {
        let hello = r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"123.456\",\"activity_timeout\":120}"}"#;
        assert_eq!(socket_id(hello).unwrap(), "123.456");
        let added = r#"{"event":"pusher_internal:member_added","channel":"presence-churn-1","data":"{\"user_id\":\"bench-j1700000000123456-7\",\"user_info\":{}}"}"#;
        assert_eq!(member_added_sent_us(added), Some(1_700_000_000_123_456));
        let removed = added.replace("member_added", "member_removed");
        assert_eq!(member_added_sent_us(&removed), None);
        let event =
            r#"{"event":"bench","channel":"presence-fanout","data":"bench-t1700000000000001"}"#;
        assert_eq!(number_after(event, SENT), Some(1_700_000_000_000_001));
        assert!(is_ping(br#"{"event":"pusher:ping","data":{}}"#));
        assert!(!is_ping(added.as_bytes()));
    }

    #[test]
    fn masks_control_frames() {
        let f = client_frame(OP_PONG, b"hi");
        assert_eq!((f[0], f[1]), (0x8a, 0x82));
        let key = &f[2..6];
        assert_eq!([f[6] ^ key[0], f[7] ^ key[1]], *b"hi");
    }
}
