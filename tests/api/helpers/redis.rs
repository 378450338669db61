//! Private `redis-server` processes on free ports, and what tests ask of them.

use super::{eventually, free_port};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A private `redis-server` on a free port, killed on drop. It can be stopped and started
/// again on the same port to simulate an outage.
pub struct RedisServer {
    port: u16,
    dir: TempDir,
    child: Option<Child>,
    /// Append-only file with fsync on every write, so that a restart keeps the data.
    persistent: bool,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// A server whose data survives [`RedisServer::restart`], as production's AOF does.
    pub fn start_persistent() -> Self {
        Self::start_with(true)
    }

    fn start_with(persistent: bool) -> Self {
        let mut server = Self {
            port: free_port(),
            dir: tempfile::tempdir().expect("a temp dir"),
            child: None,
            persistent,
        };
        // A free port can be taken by a parallel test between choosing and binding it:
        // then choose another.
        for _ in 0..5 {
            if server.launch() {
                return server;
            }
            server.stop();
            server.port = free_port();
        }
        panic!("redis-server did not start");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs one command with `redis-cli`; answers what it printed.
    pub fn command(&self, args: &[&str]) -> String {
        super::cluster::cli(self.port, args)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open and nothing is answered, as in
    /// a long fork, a swap storm or a network black hole.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen server go on (SIGCONT): it runs what it received meanwhile.
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("a running server").id();
        let sent = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill {signal} {pid}");
    }

    /// Starts the server again on the same port (its data is kept only if persistent).
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.launch(),
            "redis-server did not start again on its port"
        );
    }

    /// Spawns redis-server and waits until it is this very process that answers on the
    /// port (another test's server could answer there too).
    fn launch(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(if self.persistent {
                ["--appendonly", "yes", "--appendfsync", "always"]
            } else {
                ["--appendonly", "no", "--appendfsync", "everysec"]
            })
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is on PATH (.ci/run installs it)");
        let pid = child.id();
        self.child = Some(child);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            let exited = self
                .child
                .as_mut()
                .is_some_and(|c| c.try_wait().ok().flatten().is_some());
            if exited {
                return false;
            }
            if self.server_pid() == Some(pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// The process id of the server answering on the port (from `INFO server`).
    fn server_pid(&self) -> Option<u32> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        stream.write_all(b"INFO server\r\n").ok()?;
        let mut reply = String::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(rest) = reply.split("process_id:").nth(1)
                && let Some((pid, _)) = rest.split_once("\r\n")
            {
                return pid.trim().parse().ok();
            }
            let n = stream.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            reply.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until `n` instances listen on the link change feed of the Redis at `url`, so that
/// a test's change cannot be published before an instance subscribed. Of a cluster's
/// URLs, the first: where the instances subscribe first.
pub async fn wait_for_change_feed(url: &str, n: usize) {
    let first = url.split(',').next().expect("a redis url");
    let client = redis::Client::open(first).expect("a redis url");
    eventually(
        "every instance subscribed to the change feed",
        Duration::from_secs(10),
        || {
            let client = client.clone();
            async move {
                let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
                    return false;
                };
                let reply: redis::RedisResult<(String, usize)> = redis::cmd("PUBSUB")
                    .arg("NUMSUB")
                    .arg("akti:link-changes")
                    .query_async(&mut conn)
                    .await;
                reply.is_ok_and(|(_, count)| count >= n)
            }
        },
    )
    .await;
}
