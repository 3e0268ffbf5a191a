//! The command line. Every scenario is bounded by `--duration` and its counts; every address
//! it connects to is on loopback.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Load generator for ActiveNow, with a bare WebSocket floor server to compare with.
#[derive(Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// N connections over R rooms, heartbeating every T s: server RSS per socket.
    Idle(RunArgs),
    /// Connections sending heartbeats as fast as asked: heartbeats/s accepted by the server.
    Heartbeat(RunArgs),
    /// Watchers in rooms while sessions join and leave: joins/leaves per second and the
    /// join-to-event latency the watchers see.
    Churn(RunArgs),
    /// One room of M members, K HTTP presence updates/s: deliveries/s and their latency.
    Fanout(RunArgs),
    /// The floor: a bare WebSocket broadcast server (no presence logic) on the same stack.
    FloorServer(FloorArgs),
    /// Seed 1's Socket.IO presence load (joins, heartbeats with a patch, acks timed) over
    /// Engine.IO v4 WebSocket frames, against a running server at --url (any Socket.IO
    /// presence server: ActiveNow on either backend, or seed 1's Node server).
    Socketio(crate::socketio::SocketIoArgs),
    /// Pusher Channels protocol 7 load against any Pusher server at --url (ActiveNow,
    /// soketi, sockudo): idle presence members (server RSS per member), churn
    /// (member_added latency at a join+leave rate) or fanout (HTTP API events to one
    /// channel's members).
    Pusher(crate::pusher::PusherArgs),
    /// The server API's reads at one big room (where is user X, room figures, member
    /// pages): p50/p99 over loopback HTTP, against a server in this process whose store
    /// holds a room of --members (memory, or Redis with --redis).
    ServerApi(crate::server_api::ServerApiArgs),
    /// Room-webhook throughput with batching: launches --server with WEBHOOK_URL at a
    /// receiver in this process and churns joins and leaves; events delivered per second.
    Webhooks(crate::webhooks::WebhookArgs),
}

#[derive(Args, Clone, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Internal: run as generator process `i/W` of a split run.
    #[arg(long, hide = true)]
    pub worker: Option<String>,
    /// Internal: the server nodes a generator process drives, comma-separated.
    #[arg(long, hide = true)]
    pub worker_url: Option<String>,
}

#[derive(Args, Clone, Debug)]
pub struct TargetArgs {
    /// The `activenow` binary to launch for each run (memory backend, 127.0.0.1, a free
    /// port). Without it, --url names a server that is already running.
    #[arg(long)]
    pub server: Option<PathBuf>,
    /// A running server, e.g. http://127.0.0.1:8080 (used when --server is not given).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The pid of the running server given by --url, to read its RSS from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// activenow nodes launched per run (with --server); more than one share a fresh
    /// redis-server, and the sockets are spread evenly over the nodes [default: 1].
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
    /// Run the launched node(s) on the Redis backend even when there is one.
    #[arg(long)]
    pub redis: bool,
    /// The redis-server binary a Redis run starts on a free port, fresh for every run.
    #[arg(long, default_value = "redis-server")]
    pub redis_server: String,
    /// KEY=VALUE added to the launched server's environment (repeatable); WS_READ_BUFFER_BYTES
    /// and WS_WRITE_BUFFER_BYTES also size the floor's buffers.
    #[arg(long = "server-env", value_name = "KEY=VALUE")]
    pub server_env: Vec<String>,
    /// Skip the floor (no ratios).
    #[arg(long)]
    pub no_floor: bool,
    /// Runs per target; figures are the medians [default: 3].
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Args, Clone, Debug)]
pub struct LoadArgs {
    /// Connections (idle, heartbeat) or watchers (churn) [default: idle 15000, heartbeat
    /// 10000, churn 10000].
    #[arg(long)]
    pub conns: Option<usize>,
    /// Rooms the connections are spread over [default: conns / 100, at least 1].
    #[arg(long)]
    pub rooms: Option<usize>,
    /// Seconds measured, after the warm-up [default: 20].
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Seconds of load before measuring [default: 3].
    #[arg(long, default_value_t = 3)]
    pub warmup: u64,
    /// idle: seconds between heartbeats of one connection [default: 15].
    #[arg(long, default_value_t = 15)]
    pub hb_secs: u64,
    /// heartbeat: heartbeats per second per connection (the server's default
    /// MAX_MESSAGES_PER_SECOND is 20) [default: 20].
    #[arg(long, default_value_t = 20)]
    pub per_conn_rate: u32,
    /// heartbeat: a connection writes its heartbeats in one batch per tick [default: 250].
    #[arg(long, default_value_t = 250)]
    pub tick_ms: u64,
    /// churn: sessions joining per second (each leaves again after --hold-ms) [default: 500].
    #[arg(long, default_value_t = 500)]
    pub rate: u32,
    /// churn: milliseconds a churning session stays [default: 1000].
    #[arg(long, default_value_t = 1000)]
    pub hold_ms: u64,
    /// fanout: members of the room [default: 10000].
    #[arg(long, default_value_t = 10_000)]
    pub members: usize,
    /// fanout: presence updates per second [default: 100].
    #[arg(long, default_value_t = 100)]
    pub updates: u32,
    /// fanout: keep-alive HTTP connections the updates are sent over [default: 4].
    #[arg(long, default_value_t = 4)]
    pub http_conns: usize,
    /// Client sockets per source address 127.0.0.x (each has about 28k ephemeral ports)
    /// [default: 10000].
    #[arg(long, default_value_t = 10_000)]
    pub per_source: usize,
    /// File descriptors one generator process may use; more connections are split over
    /// several processes [default: 18000].
    #[arg(long, default_value_t = 18_000)]
    pub max_fds: usize,
    /// Connection attempts in flight while connecting [default: 200].
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
}

#[derive(Args, Clone, Debug)]
pub struct FloorArgs {
    /// Listen port on 127.0.0.1.
    #[arg(long, default_value_t = 8090)]
    pub port: u16,
    /// WebSocket read buffer per connection, bytes (as WS_READ_BUFFER_BYTES).
    #[arg(long, default_value_t = 4096)]
    pub read_buffer: usize,
    /// WebSocket write buffer per connection, bytes (as WS_WRITE_BUFFER_BYTES).
    #[arg(long, default_value_t = 4096)]
    pub write_buffer: usize,
    /// Largest inbound message, bytes (as MAX_FRAME_BYTES).
    #[arg(long, default_value_t = 65_536)]
    pub max_frame: usize,
    /// Frames queued per room channel before a slow receiver lags (as SEND_QUEUE_CAPACITY).
    #[arg(long, default_value_t = 256)]
    pub queue: usize,
}

impl RunArgs {
    /// Whether launched nodes share a Redis.
    pub fn uses_redis(&self) -> bool {
        self.target.redis || self.target.nodes > 1
    }

    /// `(index, count)` when this process is one generator of a split run.
    pub fn worker(&self) -> anyhow::Result<Option<(usize, usize)>> {
        let Some(w) = &self.worker else {
            return Ok(None);
        };
        let (i, n) = w
            .split_once('/')
            .ok_or_else(|| anyhow::anyhow!("--worker takes i/W"))?;
        Ok(Some((i.parse()?, n.parse()?)))
    }

    /// The value the launched server gets for `key`, if --server-env sets it.
    pub fn server_env(&self, key: &str) -> Option<&str> {
        self.target
            .server_env
            .iter()
            .filter_map(|kv| kv.split_once('='))
            .rfind(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}
