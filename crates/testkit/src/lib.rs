//! # ActiveNow test kit
//!
//! Real child processes for tests, never mocks: a [`RedisServer`] on a free loopback port that
//! can be stopped and started again on the same port (to test a Redis restart), and
//! [`spawn_tied`] for any other child (the `activenow` binary in multi-node tests).
//!
//! Children are tied to the test process: they get `SIGKILL` when it dies (Linux
//! `PR_SET_PDEATHSIG`), so an aborted test run leaves no `redis-server` behind. The death
//! signal follows the *thread* that spawned the child, so every child is spawned from one
//! spawner thread that lives as long as the process.
//!
//! A missing `redis-server` fails the test under `CI=true` and skips it, loudly, otherwise.
//!
//! [`imports`] reads a crate's file-level import graph, for the layering tests.

pub mod cluster;
pub mod imports;

pub use cluster::RedisCluster;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a started child may take to answer.
const START_WAIT: Duration = Duration::from_secs(10);

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns `command` from the long-lived spawner thread, with `SIGKILL` on the test process's
/// death.
pub fn spawn_tied(command: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("testkit-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(spawn_with_death_signal(&mut command));
                }
            })
            .expect("spawner thread");
        Mutex::new(tx)
    });
    let (reply, result) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((command, reply))
        .map_err(|_| std::io::Error::other("spawner thread gone"))?;
    result
        .recv()
        .map_err(|_| std::io::Error::other("spawner thread gone"))?
}

#[cfg(target_os = "linux")]
fn spawn_with_death_signal(command: &mut Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn()
}

#[cfg(not(target_os = "linux"))]
fn spawn_with_death_signal(command: &mut Command) -> std::io::Result<Child> {
    command.spawn()
}

/// A free TCP port on 127.0.0.1 (free when asked; the caller binds it soon after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// True when running under CI (`CI=true`): missing tools fail instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

pub(crate) fn redis_server_path() -> Option<String> {
    let path = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    Command::new(&path)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()
        .filter(|s| s.success())
        .map(|_| path)
}

/// A `redis-server` child on 127.0.0.1, without persistence (a restart starts empty).
pub struct RedisServer {
    binary: String,
    port: u16,
    child: Mutex<Option<Child>>,
}

impl RedisServer {
    /// Starts a server on a free port. `None` (after a loud message) when `redis-server` is
    /// not installed and this is not CI; under `CI=true` that is a panic.
    pub fn start() -> Option<RedisServer> {
        let Some(binary) = redis_server_path() else {
            let msg = "redis-server not found (install it, e.g. `apt-get install redis-server`, \
                       or set REDIS_SERVER): Redis tests cannot run";
            if in_ci() {
                panic!("{msg}");
            }
            eprintln!("\n!!! SKIPPED: {msg} !!!\n");
            return None;
        };
        // The free port may be taken between asking and binding: try a few.
        let mut last = String::new();
        for _ in 0..5 {
            let server = RedisServer {
                binary: binary.clone(),
                port: free_port(),
                child: Mutex::new(None),
            };
            match server.launch() {
                Ok(()) => return Some(server),
                Err(e) => last = e,
            }
        }
        panic!("redis-server did not start: {last}");
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (as a crash would: no save, nothing kept) and waits for it to exit.
    pub fn stop(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut c) = child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again, empty, on the same port.
    pub fn restart(&self) {
        self.stop();
        let deadline = Instant::now() + START_WAIT;
        loop {
            match self.launch() {
                Ok(()) => return,
                // The old socket may linger for a moment.
                Err(e) if Instant::now() > deadline => panic!("redis-server restart: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn launch(&self) -> Result<(), String> {
        let mut cmd = Command::new(&self.binary);
        cmd.args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
            "--loglevel",
            "warning",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let child = spawn_tied(cmd).map_err(|e| e.to_string())?;
        let child = await_pong(child, self.port)?;
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        Ok(())
    }
}

/// Waits until the `redis-server` just started on `port` answers `PING`; kills it and
/// fails when it exits or stays silent for the start wait.
pub(crate) fn await_pong(mut child: Child, port: u16) -> Result<Child, String> {
    let deadline = Instant::now() + START_WAIT;
    // Polling a starting process is the one wait here that has no event to await.
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited with {status} (port {port} taken?)"));
        }
        if ping(port) {
            return Ok(child);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err("no PONG within the start wait".into())
}

impl RedisServer {
    /// Sends one command and returns the raw RESP reply (for assertions on server state).
    pub fn command(&self, args: &[&str]) -> String {
        command_on(self.port, args)
    }
}

/// Sends one command to the Redis on `port` and returns the raw RESP reply.
pub fn command_on(port: u16, args: &[&str]) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    if s.write_all(req.as_bytes()).is_err() {
        return String::new();
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while resp_end(&out, 0).is_none() {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where the RESP value starting at `at` ends, once `buf` holds all of it.
fn resp_end(buf: &[u8], at: usize) -> Option<usize> {
    let line_end = at + buf.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
    let header = std::str::from_utf8(buf.get(at + 1..line_end)?).ok()?;
    let next = line_end + 2;
    match buf.get(at)? {
        b'$' => match header.parse::<i64>().ok()? {
            n if n < 0 => Some(next),
            n => (buf.len() >= next + n as usize + 2).then_some(next + n as usize + 2),
        },
        b'*' => {
            let mut pos = next;
            for _ in 0..header.parse::<i64>().ok()?.max(0) {
                pos = resp_end(buf, pos)?;
            }
            Some(pos)
        }
        _ => Some(next),
    }
}

/// True when a Redis on `port` answers `PING`.
pub fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_stops_and_restarts_on_the_same_port() {
        let Some(redis) = RedisServer::start() else {
            return;
        };
        let port = redis.port();
        assert!(ping(port));
        redis.stop();
        assert!(!ping(port));
        redis.restart();
        assert_eq!(redis.port(), port);
        assert!(ping(port));
    }
}
