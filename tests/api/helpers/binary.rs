//! The released binary, as an operator runs it.

use super::{client, eventually, free_port};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub fn binary_path() -> &'static str {
    env!("CARGO_BIN_EXE_akti-link")
}

/// The released binary, started with `env` and waited for until it answers `/healthz`.
pub struct Binary {
    pub child: Child,
    pub public: String,
    pub admin: String,
    pub log: PathBuf,
}

impl Binary {
    /// Starts the binary on ephemeral ports (read back from its "listening" log line, so
    /// no port can be taken by a parallel test in between) and waits for `/healthz`.
    pub async fn start(env: &[(&str, &str)], log_dir: &std::path::Path) -> Self {
        Self::start_with(env, log_dir, |_| {}).await
    }

    /// [`Binary::start`], with `tweak` applied to the command before it is spawned.
    pub async fn start_with(
        env: &[(&str, &str)],
        log_dir: &std::path::Path,
        tweak: impl FnOnce(&mut Command),
    ) -> Self {
        let log = log_dir.join(format!("akti-{}.log", free_port()));
        let out = std::fs::File::create(&log).expect("a log file");
        let mut command = Command::new(binary_path());
        command
            .env_clear()
            .env("AKTI_PUBLIC_ADDR", "127.0.0.1:0")
            .env("AKTI_ADMIN_ADDR", "127.0.0.1:0")
            .envs(env.iter().copied())
            .current_dir(log_dir)
            .stdout(out.try_clone().expect("a log file"))
            .stderr(out);
        tweak(&mut command);
        let child = command.spawn().expect("the binary starts");
        let mut binary = Self {
            child,
            public: String::new(),
            admin: String::new(),
            log,
        };
        let start = Instant::now();
        let (public, admin) = loop {
            let text = binary.log();
            let addr = |name: &str| {
                text.lines()
                    .find(|l| l.contains("listening"))
                    .and_then(|l| l.split(&format!("{name}=")).nth(1))
                    .and_then(|rest| rest.split_whitespace().next())
                    .map(str::to_owned)
            };
            if let (Some(public), Some(admin)) = (addr("public"), addr("admin")) {
                break (public, admin);
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the binary did not start listening: {text}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        binary.public = format!("http://{public}");
        binary.admin = format!("http://{admin}");
        let health = format!("{}/healthz", binary.admin);
        eventually(
            "the binary answers /healthz",
            Duration::from_secs(10),
            || {
                let health = health.clone();
                async move {
                    let response = client().get(&health).send().await;
                    response.is_ok_and(|r| r.status().is_success())
                }
            },
        )
        .await;
        binary
    }

    /// Sends SIGTERM and returns the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process's resident memory, from `/proc`.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the process is alive");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status");
        kib * 1024
    }

    /// Subscribes `url` to every event through the admin API, with `token`.
    pub async fn subscribe(&self, token: &str, url: &str) {
        let created = client()
            .post(format!("{}/v1/webhooks", self.admin))
            .bearer_auth(token)
            .json(&serde_json::json!({"url": url}))
            .send()
            .await
            .expect("the admin listener answers");
        assert_eq!(created.status(), reqwest::StatusCode::CREATED);
    }

    /// Creates one link of `campaign` to `url` per lead with `token`; answers their codes.
    pub async fn bulk(
        &self,
        token: &str,
        campaign: &str,
        url: &str,
        leads: Vec<serde_json::Value>,
    ) -> Vec<String> {
        let response = client()
            .post(format!("{}/v1/links/bulk", self.admin))
            .bearer_auth(token)
            .json(&serde_json::json!({"campaignId": campaign, "url": url, "leads": leads}))
            .send()
            .await
            .expect("the admin listener answers");
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        let links: serde_json::Value = response.json().await.expect("a JSON body");
        (links["links"].as_array().expect("links").iter())
            .map(|l| l["code"].as_str().expect("a code").to_owned())
            .collect()
    }

    /// The `host:port` of a listener's URL.
    pub fn addr(url: &str) -> &str {
        url.trim_start_matches("http://")
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
