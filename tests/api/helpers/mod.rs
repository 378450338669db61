//! The test harness: in-process apps ([`app`]), private Redis servers ([`redis`]), webhook
//! receivers ([`receiver`]), the released binary ([`binary`]) and the API as tests call it
//! ([`api`]).

mod api;
pub mod app;
mod binary;
mod cluster;
mod receiver;
mod redis;

pub use app::TestApp;
pub use binary::{Binary, binary_path};
pub use cluster::RedisCluster;
pub use receiver::{Received, Receiver, Reply};
pub use redis::{RedisServer, wait_for_change_feed};

use akti_link::config::{Config, StoreConfig};
use reqwest::Response;
use serde_json::Value;
use std::net::TcpListener;
use std::time::{Duration, Instant};

pub const TOKEN: &str = "test-token";
pub const BASE_URL: &str = "https://link.test";
/// Event retention for stores opened directly by a test.
pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a test waits for something that should happen soon.
pub const WAIT: Duration = Duration::from_secs(10);

/// Runs each `async fn(Backend)` as one test per store, `mod <name> { embedded, redis,
/// cluster }`,
/// each ending with the check that its apps have nothing left to deliver
/// ([`app::checked`]; a test that leaves deliveries pending says so with
/// `TestApp::allow_pending`).
#[macro_export]
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn embedded() {
                    $crate::helpers::app::checked(super::$name($crate::helpers::Backend::Embedded)).await
                }
                #[tokio::test]
                async fn redis() {
                    $crate::helpers::app::checked(super::$name($crate::helpers::Backend::Redis)).await
                }
                #[tokio::test]
                async fn cluster() {
                    $crate::helpers::app::checked(super::$name($crate::helpers::Backend::Cluster)).await
                }
            }
        )*
    };
}

/// Runs each `async fn(Backend)` about several instances sharing one Redis as one test on a
/// standalone Redis and one on a Redis Cluster, `mod <name> { redis, cluster }`. The test
/// owns the Redis its apps share (it is gone when the test returns), so it checks what is
/// left to deliver itself.
#[macro_export]
macro_rules! on_shared_redis {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn redis() {
                    super::$name($crate::helpers::Backend::Redis).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn cluster() {
                    super::$name($crate::helpers::Backend::Cluster).await
                }
            }
        )*
    };
}

/// A Redis that several instances of a test share: one server or a cluster, kept running
/// while it lives.
pub enum SharedRedis {
    One(RedisServer),
    Cluster(RedisCluster),
}

impl SharedRedis {
    pub async fn start(backend: Backend) -> Self {
        match backend {
            Backend::Redis => Self::One(RedisServer::start()),
            Backend::Cluster => Self::Cluster(
                tokio::task::spawn_blocking(RedisCluster::start)
                    .await
                    .expect("the cluster starts"),
            ),
            Backend::Embedded => panic!("the embedded store is not shared"),
        }
    }

    /// What `AKTI_REDIS_URL` says for it.
    pub fn url(&self) -> String {
        match self {
            Self::One(redis) => redis.url(),
            Self::Cluster(cluster) => cluster.urls(),
        }
    }

    pub fn store(&self) -> akti_link::config::StoreConfig {
        akti_link::config::StoreConfig::Redis { url: self.url() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Redis,
    /// A private Redis Cluster of three primaries with a replica each.
    Cluster,
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
    config.admin_token = vec![TOKEN.to_owned()];
    config.base_url = BASE_URL.to_owned();
    config
}

/// Configuration for webhook tests: loopback receivers allowed, short retries.
pub fn webhook_config(config: &mut Config) {
    config.webhook_allow_private = true;
    config.webhook_retry_schedule = vec![Duration::from_millis(50); 3];
    config.webhook_timeout = Duration::from_secs(5);
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
