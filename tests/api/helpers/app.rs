//! The app running in-process on ephemeral ports, and the check that every test on both
//! stores ends with nothing left to deliver.

use super::{Backend, RedisCluster, RedisServer, client, test_config};
use akti_link::app::App;
use akti_link::config::{Config, StoreConfig};
use akti_link::store::Store;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// What keeps an app running, shared with the end-of-test check.
struct Running {
    shutdown: CancellationToken,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    store: Arc<dyn Store>,
    /// Kept alive (and deleted) with the app.
    _data_dir: Option<TempDir>,
    redis: Mutex<Option<RedisServer>>,
    cluster: Mutex<Option<RedisCluster>>,
    /// The test said deliveries may be left pending (a receiver that never answers).
    pending_allowed: AtomicBool,
}

impl Running {
    async fn stop(&self) {
        self.shutdown.cancel();
        let task = self.task.lock().unwrap().take();
        if let Some(task) = task {
            task.await.expect("the app stops cleanly");
        }
    }
}

tokio::task_local! {
    /// The apps of the test running in this task, checked when it ends.
    static APPS: RefCell<Vec<Arc<Running>>>;
}

/// Runs `test`, then checks that every app it started has nothing left to deliver (unless
/// the test allowed it) and stops them.
pub async fn checked(test: impl std::future::Future<Output = ()>) {
    APPS.scope(RefCell::new(Vec::new()), async {
        test.await;
        let apps = APPS.with(|apps| apps.take());
        for app in apps {
            if !app.pending_allowed.load(Ordering::Relaxed) && !app.shutdown.is_cancelled() {
                drain_store(app.store.as_ref(), "at the end of the test").await;
            }
            app.stop().await;
        }
    })
    .await;
}

/// Waits until the outbox of `store` holds no pending delivery.
async fn drain_store(store: &dyn Store, when: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let depth = store.queue_depth().await.expect("the store answers");
        if depth.pending == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} deliveries still pending {when}",
            depth.pending
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The app running in-process on ephemeral ports, with a client for each listener.
pub struct TestApp {
    pub public: String,
    pub admin: String,
    pub client: reqwest::Client,
    running: Arc<Running>,
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
                Self::start(store, tweak, Some(dir), None).await
            }
            Backend::Redis => Self::spawn_on_redis(RedisServer::start(), tweak).await,
            Backend::Cluster => {
                let cluster = tokio::task::spawn_blocking(RedisCluster::start)
                    .await
                    .expect("the cluster starts");
                Self::spawn_on_cluster(cluster, tweak).await
            }
        }
    }

    /// Starts an app on `cluster`, which it keeps (and the test can kill nodes of).
    pub async fn spawn_on_cluster(cluster: RedisCluster, tweak: impl FnOnce(&mut Config)) -> Self {
        let store = StoreConfig::Redis {
            url: cluster.urls(),
        };
        let app = Self::start(store, tweak, None, None).await;
        *app.running.cluster.lock().unwrap() = Some(cluster);
        app
    }

    /// Starts an app on `redis`, which it keeps (and the test can stop and restart).
    pub async fn spawn_on_redis(redis: RedisServer, tweak: impl FnOnce(&mut Config)) -> Self {
        let store = StoreConfig::Redis { url: redis.url() };
        Self::start(store, tweak, None, Some(redis)).await
    }

    /// Starts an app on an existing store (e.g. a second instance on the same Redis).
    pub async fn spawn_on(store: StoreConfig, tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start(store, tweak, None, None).await
    }

    async fn start(
        store: StoreConfig,
        tweak: impl FnOnce(&mut Config),
        data_dir: Option<TempDir>,
        redis: Option<RedisServer>,
    ) -> Self {
        let mut config = test_config(store);
        tweak(&mut config);
        let app = App::build(config).await.expect("the app starts");
        let public = format!("http://{}", app.public_addr());
        let admin = format!("http://{}", app.admin_addr());
        let running = Arc::new(Running {
            shutdown: app.shutdown_token(),
            store: app.store(),
            task: Mutex::new(Some(tokio::spawn(app.run()))),
            _data_dir: data_dir,
            redis: Mutex::new(redis),
            cluster: Mutex::new(None),
            pending_allowed: AtomicBool::new(false),
        });
        let _ = APPS.try_with(|apps| apps.borrow_mut().push(running.clone()));
        Self {
            public,
            admin,
            client: client(),
            running,
        }
    }

    /// The URLs of the Redis (the primaries of a cluster, comma-separated) this app
    /// started on; `None` on the embedded store or a Redis it shares.
    pub fn redis_urls(&self) -> Option<String> {
        if let Some(redis) = self.running.redis.lock().unwrap().as_ref() {
            return Some(redis.url());
        }
        (self.running.cluster.lock().unwrap().as_ref()).map(|cluster| cluster.urls())
    }

    /// The embedded store's directory; `None` on Redis.
    pub fn data_dir(&self) -> Option<std::path::PathBuf> {
        (self.running._data_dir.as_ref()).map(|dir| dir.path().to_owned())
    }

    pub async fn stop(self) {
        self.running.stop().await;
    }

    /// Waits until no delivery is pending: every event this app queued has been delivered
    /// or has failed for good. What a test checks after it proves nothing more arrives.
    pub async fn drain(&self) {
        drain_store(self.running.store.as_ref(), "after drain").await;
    }

    /// This test leaves deliveries pending on purpose.
    pub fn allow_pending(&self) {
        self.running.pending_allowed.store(true, Ordering::Relaxed);
    }

    /// What the test does to the app's own Redis (stop, restart, freeze, thaw).
    pub fn redis<T>(&self, f: impl FnOnce(&mut RedisServer) -> T) -> T {
        let mut redis = self.running.redis.lock().unwrap();
        f(redis.as_mut().expect("a Redis-backed app"))
    }

    /// What the test does to the app's own Redis Cluster (kill a node, count commands).
    pub fn cluster<T>(&self, f: impl FnOnce(&mut RedisCluster) -> T) -> T {
        let mut cluster = self.running.cluster.lock().unwrap();
        f(cluster.as_mut().expect("a cluster-backed app"))
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("{}{path}", self.admin)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // An app of a checked test is stopped by the check, after it.
        if APPS.try_with(|_| ()).is_err() {
            self.running.shutdown.cancel();
        }
    }
}
