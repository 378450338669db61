//! A private Redis Cluster: six `redis-server` processes in cluster mode (three primaries,
//! a replica each) on free ports, joined with `redis-cli --cluster create`; killed on drop.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const NODES: usize = 6;

pub struct RedisCluster {
    ports: Vec<u16>,
    children: Vec<Option<Child>>,
    _dir: TempDir,
}

/// How many ports this process has looked at: each cluster takes the next free ones.
static LOOKED_AT: AtomicU32 = AtomicU32::new(0);

fn free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// `n` ports in 10000..20000 whose bus ports (port + 10000) are free too: below the
/// ephemeral range, so that no client socket takes one between choosing and binding it,
/// and each test binary starting at its own place.
fn free_ports(n: usize) -> Vec<u16> {
    let start = std::process::id() % 50 * 200;
    let mut ports = Vec::with_capacity(n);
    while ports.len() < n {
        let k = LOOKED_AT.fetch_add(1, Ordering::Relaxed);
        let port = 10_000 + ((start + k) % 10_000) as u16;
        if free(port) && free(port + 10_000) {
            ports.push(port);
        }
    }
    ports
}

/// Runs `redis-cli -p <port> <args>` and answers its output.
pub fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli is on PATH (.ci/run installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_owned())
}

impl RedisCluster {
    pub fn start() -> Self {
        for _ in 0..3 {
            if let Some(cluster) = Self::try_start() {
                return cluster;
            }
        }
        panic!("the Redis Cluster did not form");
    }

    fn try_start() -> Option<Self> {
        let dir = tempfile::tempdir().expect("a temp dir");
        let ports = free_ports(NODES);
        let children = ports
            .iter()
            .map(|&port| Some(Self::launch(&dir, port)))
            .collect();
        let cluster = Self {
            ports,
            children,
            _dir: dir,
        };
        for &port in &cluster.ports {
            if !wait_until(Duration::from_secs(10), || {
                cli(port, &["PING"]).trim() == "PONG"
            }) {
                return None;
            }
        }
        let nodes: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&nodes)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli runs");
        if !created.success() {
            return None;
        }
        cluster.wait_healthy().then_some(cluster)
    }

    fn launch(dir: &TempDir, port: u16) -> Child {
        let node_dir = dir.path().join(port.to_string());
        std::fs::create_dir_all(&node_dir).expect("a node directory");
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ])
            .args(["--cluster-node-timeout", "1000"])
            .args(["--cluster-require-full-coverage", "no"])
            .args(["--repl-diskless-sync-delay", "0"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&node_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is on PATH (.ci/run installs it)")
    }

    /// Every live node sees the whole cluster as ok, every replica is in sync with its
    /// primary, and every node's view names the same number of live primaries (gossip
    /// spreads the replicas' roles a moment after they are in sync).
    pub fn wait_healthy(&self) -> bool {
        wait_until(Duration::from_secs(20), || {
            let primaries = (self.live_ports())
                .filter(|&port| {
                    let replication = cli(port, &["INFO", "replication"]);
                    info_field(&replication, "role").as_deref() == Some("master")
                })
                .count();
            let views_agree = self.live_ports().all(|port| {
                let nodes = cli(port, &["CLUSTER", "NODES"]);
                let seen = (nodes.lines())
                    .filter(|line| {
                        let flags = line.split(' ').nth(2).unwrap_or("");
                        flags.split(',').any(|f| f == "master") && !flags.contains("fail")
                    })
                    .count();
                seen == primaries
            });
            views_agree
                && self.live_ports().all(|port| {
                    let info = cli(port, &["CLUSTER", "INFO"]);
                    let replication = cli(port, &["INFO", "replication"]);
                    info_field(&info, "cluster_state").as_deref() == Some("ok")
                        && info_field(&info, "cluster_slots_ok").as_deref() == Some("16384")
                        && (info_field(&replication, "role").as_deref() == Some("master")
                            || info_field(&replication, "master_link_status").as_deref()
                                == Some("up"))
                })
        })
    }

    fn live_ports(&self) -> impl Iterator<Item = u16> + '_ {
        (self.ports.iter().zip(&self.children))
            .filter(|(_, c)| c.is_some())
            .map(|(p, _)| *p)
    }

    /// The URLs the service is given: the primaries'.
    pub fn urls(&self) -> String {
        (self.primaries().iter())
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The ports of the live primaries.
    pub fn primaries(&self) -> Vec<u16> {
        self.live_ports()
            .filter(|&p| {
                info_field(&cli(p, &["INFO", "replication"]), "role").as_deref() == Some("master")
            })
            .collect()
    }

    /// Kills a node with SIGKILL.
    pub fn kill(&mut self, port: u16) {
        let i = self.ports.iter().position(|&p| p == port).expect("a node");
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// How many commands each live primary has run so far (`INFO commandstats`).
    pub fn commands_per_primary(&self) -> Vec<(u16, u64)> {
        self.primaries()
            .into_iter()
            .map(|port| {
                let stats = cli(port, &["INFO", "commandstats"]);
                let calls = stats
                    .lines()
                    .filter_map(|l| l.split("calls=").nth(1))
                    .filter_map(|rest| rest.split(',').next()?.parse::<u64>().ok())
                    .sum();
                (port, calls)
            })
            .collect()
    }
}

fn wait_until(deadline: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
