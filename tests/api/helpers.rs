//! The test harness: private Redis servers, in-process apps and the released binary.

use akti_link::app::App;
use akti_link::config::{Config, StoreConfig};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "test-token";
pub const BASE_URL: &str = "https://link.test";
/// Event retention for stores opened directly by a test.
pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Runs an `async fn(Backend)` as one test per store: `mod <name> { embedded, redis }`.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn embedded() {
                    super::$name($crate::helpers::Backend::Embedded).await
                }
                #[tokio::test]
                async fn redis() {
                    super::$name($crate::helpers::Backend::Redis).await
                }
            }
        )*
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Redis,
}

/// A free TCP port on loopback (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls `check` until it is true, failing the test after `deadline`.
pub async fn eventually<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

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

/// The app running in-process on ephemeral ports, with a client for each listener.
pub struct TestApp {
    pub public: String,
    pub admin: String,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Kept alive (and deleted) with the app.
    pub data_dir: Option<TempDir>,
    pub redis: Option<RedisServer>,
}

/// A client that shows redirects instead of following them.
pub fn client() -> reqwest::Client {
    // reqwest is built without a bundled crypto provider (the service installs ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
}

pub fn test_config(store: StoreConfig) -> Config {
    let mut config = Config::defaults(store);
    config.public_addr = "127.0.0.1:0".parse().unwrap();
    config.admin_addr = "127.0.0.1:0".parse().unwrap();
    config.admin_tokens = vec![TOKEN.to_owned()];
    config.base_url = BASE_URL.to_owned();
    config
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Starts an app on a fresh store of `backend`, with `tweak` applied to its config.
    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        match backend {
            Backend::Embedded => {
                let dir = tempfile::tempdir().expect("a temp dir");
                let store = StoreConfig::Embedded {
                    data_dir: dir.path().to_owned(),
                };
                let mut app = Self::spawn_on(store, tweak).await;
                app.data_dir = Some(dir);
                app
            }
            Backend::Redis => {
                let redis = RedisServer::start();
                let mut app = Self::spawn_on(StoreConfig::Redis { url: redis.url() }, tweak).await;
                app.redis = Some(redis);
                app
            }
        }
    }

    /// Starts an app on an existing store (e.g. a second instance on the same Redis).
    pub async fn spawn_on(store: StoreConfig, tweak: impl FnOnce(&mut Config)) -> Self {
        let mut config = test_config(store);
        tweak(&mut config);
        let app = App::build(config).await.expect("the app starts");
        let public = format!("http://{}", app.public_addr());
        let admin = format!("http://{}", app.admin_addr());
        let shutdown = app.shutdown_token();
        let task = tokio::spawn(app.run());
        Self {
            public,
            admin,
            client: client(),
            shutdown,
            task: Some(task),
            data_dir: None,
            redis: None,
        }
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("the app stops cleanly");
        }
    }

    pub fn redis_mut(&mut self) -> &mut RedisServer {
        self.redis.as_mut().expect("a Redis-backed app")
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("{}{path}", self.admin)
    }

    pub async fn admin_get(&self, path: &str) -> Response {
        self.client
            .get(self.admin_url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("admin GET")
    }

    pub async fn admin_send(&self, method: reqwest::Method, path: &str, body: &Value) -> Response {
        self.client
            .request(method, self.admin_url(path))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .expect("admin request")
    }

    pub async fn post_link(&self, body: Value) -> Response {
        self.admin_send(reqwest::Method::POST, "/v1/links", &body)
            .await
    }

    /// Creates a link and returns its JSON, asserting `201`.
    pub async fn create_link(&self, body: Value) -> Value {
        let response = self.post_link(body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("a link")
    }

    pub async fn patch_link(&self, code: &str, body: Value) -> Response {
        self.admin_send(reqwest::Method::PATCH, &format!("/v1/links/{code}"), &body)
            .await
    }

    /// `GET /{code}` on the public listener, without following the redirect.
    pub async fn follow(&self, code: &str) -> Response {
        self.client
            .get(format!("{}/{code}", self.public))
            .header(
                "user-agent",
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
            )
            .send()
            .await
            .expect("public GET")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn location(response: &Response) -> Option<String> {
    response
        .headers()
        .get("location")
        .map(|v| v.to_str().expect("ascii").to_owned())
}

/// The error code of an API error body.
pub async fn error_code(response: Response) -> String {
    let body: Value = response.json().await.expect("an error body");
    body["error"]["code"]
        .as_str()
        .expect("error.code")
        .to_owned()
}

/// The released binary, started with `env` and waited for until it answers `/healthz`.
pub struct Binary {
    pub child: Child,
    pub public: String,
    pub admin: String,
    pub log: PathBuf,
}

pub fn binary_path() -> &'static str {
    env!("CARGO_BIN_EXE_akti-link")
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

/// Waits until `n` instances listen on the link change feed of the Redis at `url`, so that
/// a test's change cannot be published before an instance subscribed.
pub async fn wait_for_change_feed(url: &str, n: usize) {
    let client = redis::Client::open(url).expect("a redis url");
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

/// One request a [`Receiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

/// How a [`Receiver`] answers one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
    pub retry_after: Option<&'static str>,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            delay: Duration::ZERO,
            retry_after: None,
        }
    }

    /// Never answers within any test.
    pub fn hang() -> Self {
        Self {
            status: 204,
            delay: Duration::from_secs(3600),
            retry_after: None,
        }
    }
}

#[derive(Default)]
struct ReceiverState {
    received: std::sync::Mutex<Vec<Received>>,
    scripted: std::sync::Mutex<std::collections::VecDeque<Reply>>,
    default: std::sync::Mutex<Option<Reply>>,
}

/// A real HTTP server that records every webhook it receives and answers as told; the
/// answers can change mid-test.
pub struct Receiver {
    pub url: String,
    state: std::sync::Arc<ReceiverState>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Self {
        let state = std::sync::Arc::new(ReceiverState::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let handler_state = state.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let state = handler_state.clone();
                async move {
                    state
                        .received
                        .lock()
                        .unwrap()
                        .push(Received { headers, body });
                    let reply = state
                        .scripted
                        .lock()
                        .unwrap()
                        .pop_front()
                        .or_else(|| state.default.lock().unwrap().clone())
                        .unwrap_or(Reply::status(204));
                    tokio::time::sleep(reply.delay).await;
                    let mut response = axum::http::Response::builder().status(reply.status);
                    if let Some(after) = reply.retry_after {
                        response = response.header("retry-after", after);
                    }
                    response.body(axum::body::Body::empty()).unwrap()
                }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, state, task }
    }

    /// How to answer once the scripted replies are used up.
    pub fn answer(&self, reply: Reply) {
        *self.state.default.lock().unwrap() = Some(reply);
    }

    /// Replies for the next requests, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.scripted.lock().unwrap().extend(replies);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize, deadline: Duration) -> Vec<Received> {
        eventually(
            &format!("{n} webhooks at {}", self.url),
            deadline,
            || async { self.received().len() >= n },
        )
        .await;
        self.received()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Configuration for webhook tests: loopback receivers allowed, short retries.
pub fn webhook_config(config: &mut Config) {
    config.webhook_allow_private = true;
    config.webhook_retry_schedule = vec![Duration::from_millis(50); 3];
    config.webhook_timeout = Duration::from_secs(5);
}

impl TestApp {
    /// Subscribes `url` with the extra fields of `filters`; returns the subscription.
    pub async fn subscribe(&self, url: &str, filters: Value) -> Value {
        let mut body = serde_json::json!({ "url": url });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), filters.as_object()) {
            body.extend(extra.clone());
        }
        let response = self
            .admin_send(reqwest::Method::POST, "/v1/webhooks", &body)
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    /// `GET /{code}` as a lead's phone would.
    pub async fn click(&self, code: &str) -> Response {
        self.follow(code).await
    }

    /// `GET /{code}` with a given User-Agent (`None`: no header at all).
    pub async fn click_as(&self, code: &str, agent: Option<&str>) -> Response {
        let mut request = self.client.get(format!("{}/{code}", self.public));
        if let Some(agent) = agent {
            request = request.header("user-agent", agent);
        }
        request.send().await.expect("public GET")
    }

    pub async fn stats(&self, code: &str) -> Value {
        self.admin_get(&format!("/v1/links/{code}/stats"))
            .await
            .json()
            .await
            .unwrap()
    }
}
