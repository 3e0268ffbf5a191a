//! Splitting a run over several generator processes, each under the per-process fd limit.
//!
//! The coordinator starts this same binary with the same arguments plus `--worker i/W` and
//! `--worker-url`. A generator connects its share of the sockets, prints `ready <n>`, waits
//! for `go` on stdin, loads the server for warm-up + duration and prints its [`Partial`] as
//! one JSON line.

use std::process::Stdio;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::cli::RunArgs;
use crate::scenario::{self, Kind, Partial, Share};
use crate::target;

struct Generator {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

pub struct Generators {
    procs: Vec<Generator>,
}

/// How many generator processes a run needs.
pub fn needed(kind: Kind, args: &RunArgs) -> usize {
    let fds = kind.conns(&args.load) + kind.extra_fds(&args.load) + 64;
    fds.div_ceil(args.load.max_fds.max(1000)).max(1)
}

/// Starts `count` generators against the `servers` (every generator spreads its sockets over
/// all of them) and waits until all are connected.
pub async fn spawn(count: usize, servers: &[std::net::SocketAddr]) -> anyhow::Result<Generators> {
    let exe = std::env::current_exe()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let urls = servers
        .iter()
        .map(|s| format!("http://{s}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut procs = Vec::with_capacity(count);
    for i in 0..count {
        let mut child = Command::new(&exe)
            .args(&args)
            .arg("--worker")
            .arg(format!("{i}/{count}"))
            .arg("--worker-url")
            .arg(&urls)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start a generator process")?;
        let stdin = child.stdin.take().context("generator stdin")?;
        let stdout = child.stdout.take().context("generator stdout")?;
        procs.push(Generator {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        });
    }
    for (i, g) in procs.iter_mut().enumerate() {
        let line = g.lines.next_line().await?.unwrap_or_default();
        if !line.starts_with("ready ") {
            bail!("generator {i} failed to connect");
        }
    }
    Ok(Generators { procs })
}

impl Generators {
    /// Starts the load in every generator and collects what they counted.
    pub async fn measure(mut self) -> anyhow::Result<Partial> {
        for g in &mut self.procs {
            g.stdin.write_all(b"go\n").await?;
            g.stdin.flush().await?;
        }
        let mut total = Partial::default();
        for (i, g) in self.procs.iter_mut().enumerate() {
            let line = g
                .lines
                .next_line()
                .await?
                .with_context(|| format!("generator {i} ended without a result"))?;
            total.merge(serde_json::from_str(&line)?);
            let _ = g.child.wait().await;
        }
        Ok(total)
    }
}

/// The body of a generator process.
pub async fn work(kind: Kind, args: &RunArgs, index: usize, count: usize) -> anyhow::Result<()> {
    let url = args
        .worker_url
        .as_deref()
        .context("--worker needs --worker-url")?;
    let servers = url
        .split(',')
        .map(target::parse_addr)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let running = scenario::setup(kind, &args.load, &servers, Share { index, count }).await?;
    println!("ready {}", running.connected);
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    match stdin.next_line().await? {
        Some(l) if l.trim() == "go" => {}
        _ => bail!("coordinator went away"),
    }
    let partial = running.measure().await;
    println!("{}", serde_json::to_string(&partial)?);
    Ok(())
}
