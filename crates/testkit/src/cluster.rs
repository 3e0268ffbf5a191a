//! A real Redis Cluster for tests: three masters and three replicas (`redis-server
//! --cluster-enabled yes`, joined by `redis-cli --cluster create`), each on a free loopback
//! port, tied to the test process like every other child. Nodes can be killed (`SIGKILL`) and
//! a replica promoted (`CLUSTER FAILOVER`), to test failover.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{await_pong, command_on, free_port, in_ci, redis_server_path, spawn_tied};

/// How long the cluster may take to form, or to settle after a failover.
const SETTLE_WAIT: Duration = Duration::from_secs(30);

/// Cluster node timeout: how long a silent master takes to be failed over by its replica.
pub const NODE_TIMEOUT_MS: u64 = 2_000;

struct Node {
    port: u16,
    child: Mutex<Option<Child>>,
}

/// Three masters, three replicas.
pub struct RedisCluster {
    nodes: Vec<Node>,
    dir: PathBuf,
}

/// One line of `CLUSTER NODES`.
#[derive(Clone, Debug)]
pub struct ClusterNodeInfo {
    pub port: u16,
    pub master: bool,
    /// For a replica: the port of its master.
    pub replica_of: Option<u16>,
    pub failed: bool,
}

fn redis_cli_path() -> Option<String> {
    let path = std::env::var("REDIS_CLI").unwrap_or_else(|_| "redis-cli".into());
    Command::new(&path)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()
        .filter(|s| s.success())
        .map(|_| path)
}

/// A free port whose cluster bus port (port + 10000) is free too.
fn free_cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

impl RedisCluster {
    /// Starts and forms the cluster. `None` (after a loud message) when `redis-server` or
    /// `redis-cli` is missing and this is not CI; under `CI=true` that is a panic.
    pub fn start() -> Option<RedisCluster> {
        let (Some(server), Some(cli)) = (redis_server_path(), redis_cli_path()) else {
            let msg = "redis-server or redis-cli not found (apt-get install redis-server): \
                       Redis Cluster tests cannot run";
            if in_ci() {
                panic!("{msg}");
            }
            eprintln!("\n!!! SKIPPED: {msg} !!!\n");
            return None;
        };
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "activenow-cluster-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cluster directory");
        let mut nodes = Vec::new();
        for _ in 0..6 {
            let port = free_cluster_port();
            let node = Node {
                port,
                child: Mutex::new(None),
            };
            launch(&server, &dir, &node).expect("cluster node start");
            nodes.push(node);
        }
        let mut create = Command::new(&cli);
        create.arg("--cluster").arg("create");
        for n in &nodes {
            create.arg(format!("127.0.0.1:{}", n.port));
        }
        create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let out = create.output().expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = RedisCluster { nodes, dir };
        cluster.wait_settled();
        Some(cluster)
    }

    /// `redis-cluster://` with every node, as `REDIS_URL` takes it.
    pub fn url(&self) -> String {
        let mut url = format!("redis-cluster://127.0.0.1:{}", self.nodes[0].port);
        for (i, n) in self.nodes.iter().enumerate().skip(1) {
            url.push(if i == 1 { '?' } else { '&' });
            url.push_str(&format!("node=127.0.0.1:{}", n.port));
        }
        url
    }

    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// The cluster as one live node sees it.
    pub fn topology(&self) -> Vec<ClusterNodeInfo> {
        for n in self.live() {
            let reply = command_on(n.port, &["CLUSTER", "NODES"]);
            let infos = parse_nodes(&reply);
            if !infos.is_empty() {
                return infos;
            }
        }
        Vec::new()
    }

    /// Ports of the masters that are not failed.
    pub fn masters(&self) -> Vec<u16> {
        self.topology()
            .into_iter()
            .filter(|n| n.master && !n.failed)
            .map(|n| n.port)
            .collect()
    }

    /// The replica of `master`.
    pub fn replica_of(&self, master: u16) -> Option<u16> {
        self.topology()
            .into_iter()
            .find(|n| n.replica_of == Some(master) && !n.failed)
            .map(|n| n.port)
    }

    /// A manual failover: `replica` becomes the master of its shard (`CLUSTER FAILOVER`),
    /// and this returns once every live node agrees.
    pub fn failover(&self, replica: u16) {
        let reply = command_on(replica, &["CLUSTER", "FAILOVER"]);
        assert!(reply.starts_with("+OK"), "CLUSTER FAILOVER: {reply}");
        let deadline = Instant::now() + SETTLE_WAIT;
        while Instant::now() < deadline {
            if self.masters().contains(&replica) {
                self.wait_settled();
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the replica on {replica} did not become a master");
    }

    /// Kills one node (`SIGKILL`) and, if it was a master, returns once its replica took
    /// over (after `NODE_TIMEOUT_MS`) and the cluster is healthy again.
    pub fn kill(&self, port: u16) {
        let was_master = self.masters().contains(&port);
        let replica = self.replica_of(port);
        if let Some(node) = self.nodes.iter().find(|n| n.port == port) {
            let mut child = node.child.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(mut c) = child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if was_master {
            let Some(replica) = replica else {
                panic!("master {port} had no replica");
            };
            let deadline = Instant::now() + SETTLE_WAIT;
            while Instant::now() < deadline {
                if self.masters().contains(&replica) {
                    self.wait_settled();
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            panic!("the replica {replica} of killed master {port} did not take over");
        }
    }

    fn live(&self) -> impl Iterator<Item = &Node> {
        self.nodes
            .iter()
            .filter(|n| n.child.lock().unwrap_or_else(|e| e.into_inner()).is_some())
    }

    /// Waits until every live node reports `cluster_state:ok` and the same set of masters.
    /// Polling: the cluster announces nothing a test could await.
    fn wait_settled(&self) {
        let deadline = Instant::now() + SETTLE_WAIT;
        while Instant::now() < deadline {
            let ok = self
                .live()
                .all(|n| command_on(n.port, &["CLUSTER", "INFO"]).contains("cluster_state:ok"));
            let views: Vec<Vec<u16>> = self
                .live()
                .map(|n| {
                    let mut m: Vec<u16> = parse_nodes(&command_on(n.port, &["CLUSTER", "NODES"]))
                        .into_iter()
                        .filter(|i| i.master && !i.failed)
                        .map(|i| i.port)
                        .collect();
                    m.sort_unstable();
                    m
                })
                .collect();
            let agreed = views.windows(2).all(|w| w[0] == w[1]) && views[0].len() == 3;
            if ok && agreed {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the Redis Cluster did not settle within {SETTLE_WAIT:?}");
    }
}

fn launch(binary: &str, dir: &std::path::Path, node: &Node) -> Result<(), String> {
    let port = node.port.to_string();
    let conf = dir.join(format!("nodes-{port}.conf"));
    let mut cmd = Command::new(binary);
    cmd.args([
        "--port",
        &port,
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        &conf.to_string_lossy(),
        "--cluster-node-timeout",
        &NODE_TIMEOUT_MS.to_string(),
        "--dir",
        &dir.to_string_lossy(),
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
    *node.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(await_pong(child, node.port)?);
    Ok(())
}

/// Parses `CLUSTER NODES` (a RESP bulk string: `$<len>` then one line per node).
fn parse_nodes(reply: &str) -> Vec<ClusterNodeInfo> {
    let mut ids = Vec::new();
    for line in reply.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() < 8 {
            continue;
        }
        let Some(port) = f[1]
            .split('@')
            .next()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse::<u16>().ok())
        else {
            continue;
        };
        ids.push((f[0].to_owned(), port, f[2].to_owned(), f[3].to_owned()));
    }
    ids.iter()
        .map(|(_, port, flags, master)| ClusterNodeInfo {
            port: *port,
            master: flags.split(',').any(|x| x == "master"),
            replica_of: ids
                .iter()
                .find(|(id, ..)| id == master)
                .map(|(_, p, ..)| *p),
            failed: flags.split(',').any(|x| x == "fail" || x == "fail?"),
        })
        .collect()
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for n in &self.nodes {
            if let Some(mut c) = n.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
