//! The servers under test: one `activenow` or floor process this bench launches (one fresh
//! process per run), several `activenow` nodes sharing a `redis-server` (`--nodes`), or a
//! server already running; their RSS and CPU from `/proc`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::cli::RunArgs;

pub struct Target {
    pub addr: SocketAddr,
    pub pid: Option<u32>,
    child: Option<Child>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Parses `http://host:port` (or `ws://`, or a bare `host:port`); loopback only.
pub fn parse_addr(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let hostport = rest.split('/').next().unwrap_or(rest);
    let hostport = hostport.replace("localhost", "127.0.0.1");
    let addr: SocketAddr = hostport
        .parse()
        .with_context(|| format!("{url}: expected http://127.0.0.1:PORT"))?;
    if !addr.ip().is_loopback() {
        bail!("{addr}: the bench only drives servers on loopback");
    }
    Ok(addr)
}

pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Resident set size of a process, KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS in /proc/<pid>/status")
}

async fn wait_healthy(addr: SocketAddr, child: &mut Child) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(mut http) = crate::http::Http::connect(addr).await {
            if let Ok((200, _)) = http.request("GET", "/health", &[], b"").await {
                return Ok(());
            }
        }
        if let Some(status) = child.try_wait()? {
            bail!("server exited during start-up: {status}");
        }
        if Instant::now() > deadline {
            bail!("server at {addr} not healthy after 15 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn launch(mut cmd: Command, addr: SocketAddr) -> anyhow::Result<Target> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .context("cannot start the server")?;
    if let Err(e) = wait_healthy(addr, &mut child).await {
        let _ = child.kill();
        return Err(e);
    }
    Ok(Target {
        addr,
        pid: Some(child.id()),
        child: Some(child),
    })
}

/// Starts the `activenow` binary on a free port: the memory backend, or node `node` of a
/// cluster sharing the Redis at `redis_url`.
pub async fn launch_activenow(
    bin: &Path,
    args: &RunArgs,
    redis_url: Option<&str>,
    node: usize,
) -> anyhow::Result<Target> {
    let port = free_port()?;
    let mut cmd = Command::new(bin);
    cmd.env("PORT", port.to_string())
        .env("BIND", "127.0.0.1")
        .env("RUST_LOG", "warn")
        .env("NODE_ID", format!("bench-{node}"));
    match redis_url {
        Some(url) => cmd.env("REDIS_URL", url),
        None => cmd.env_remove("REDIS_URL"),
    };
    for kv in &args.target.server_env {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--server-env {kv}: expected KEY=VALUE"))?;
        cmd.env(k, v);
    }
    launch(cmd, SocketAddr::from(([127, 0, 0, 1], port))).await
}

/// Starts the floor server (this binary) with the buffer sizes the activenow run uses.
pub async fn launch_floor(args: &RunArgs) -> anyhow::Result<Target> {
    let port = free_port()?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("floor-server").arg("--port").arg(port.to_string());
    for (env, flag) in [
        ("WS_READ_BUFFER_BYTES", "--read-buffer"),
        ("WS_WRITE_BUFFER_BYTES", "--write-buffer"),
        ("MAX_FRAME_BYTES", "--max-frame"),
        ("SEND_QUEUE_CAPACITY", "--queue"),
    ] {
        if let Some(v) = args.server_env(env) {
            cmd.arg(flag).arg(v);
        }
    }
    launch(cmd, SocketAddr::from(([127, 0, 0, 1], port))).await
}

/// A server this bench did not start.
pub fn running(args: &RunArgs) -> anyhow::Result<Target> {
    Ok(Target {
        addr: parse_addr(&args.target.url)?,
        pid: args.target.server_pid,
        child: None,
    })
}

/// Starts a `redis-server` on a free port that keeps nothing on disk; its URL.
pub async fn launch_redis(bin: &str) -> anyhow::Result<(Target, String)> {
    let port = free_port()?;
    let mut child = Command::new(bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| {
            format!("cannot start {bin} (install redis-server, or give --redis-url)")
        })?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if redis_ping(addr).await.is_ok() {
            break;
        }
        if let Some(status) = child.try_wait()? {
            bail!("redis-server exited during start-up: {status}");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("redis-server at {addr} not answering after 15 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let target = Target {
        addr,
        pid: Some(child.id()),
        child: Some(child),
    };
    Ok((target, format!("redis://{addr}")))
}

async fn redis_ping(addr: SocketAddr) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(b"PING\r\n").await?;
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).await?;
    if &buf != b"+PONG\r\n" {
        bail!("unexpected PING reply");
    }
    Ok(())
}

/// What one run drives: its server nodes and the Redis they share, if any.
pub struct Deployment {
    pub nodes: Vec<Target>,
    pub redis: Option<Target>,
    /// Floor servers, which keep no presence (so no counts to check).
    pub floor: bool,
}

impl Deployment {
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|t| t.addr).collect()
    }

    /// Summed RSS of the nodes, KiB; `None` when any pid is unknown.
    pub fn rss_kib(&self) -> Option<u64> {
        self.nodes
            .iter()
            .map(|t| t.pid.and_then(|p| rss_kib(p).ok()))
            .sum()
    }

    /// Summed CPU seconds of the nodes.
    pub fn cpu_secs(&self) -> Option<f64> {
        self.nodes.iter().map(|t| t.pid.and_then(cpu_secs)).sum()
    }

    pub fn redis_cpu_secs(&self) -> Option<f64> {
        self.redis.as_ref().and_then(|r| r.pid).and_then(cpu_secs)
    }
}

/// CPU seconds a process has used (user + system).
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // Linux reports in USER_HZ, 100 per second on every common configuration.
    Some(ticks / 100.0)
}
