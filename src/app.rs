//! Builds the service from a [`Config`]: the store, the cache, both listeners and the
//! background tasks; runs them until shut down.
//!
//! Each `App` has its own shutdown token, so that tests can run many apps in one process
//! and stop each one alone.

use crate::cache::LinkCache;
use crate::clicks::recorder::ClickRecorder;
use crate::config::{Config, StoreConfig};
use crate::dispatch::Dispatcher;
use crate::http::server::{self, Limits};
use crate::http::{self, AppState, Shared, admin};
use crate::store::health::StoreHealth;
use crate::store::{ChangeListener, Store, StoreError, embedded::EmbeddedStore, redis::RedisStore};
use axum::Router;
use axum::response::IntoResponse;
use futures::FutureExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;

/// How long in-flight requests may take to finish after shutdown begins.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot build the webhook client: {0}")]
    WebhookClient(#[from] reqwest::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

pub struct App {
    state: AppState,
    public: TcpListener,
    admin: TcpListener,
    shutdown: CancellationToken,
    recorder: tokio::task::JoinHandle<()>,
    dispatcher: Arc<Dispatcher>,
    public_limits: Limits,
    admin_limits: Limits,
}

impl App {
    /// Opens the store and binds both listeners; serves nothing until [`App::run`].
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let store: Arc<dyn Store> = match &config.store {
            StoreConfig::Embedded { data_dir } => {
                Arc::new(EmbeddedStore::open(data_dir, config.event_retention)?)
            }
            StoreConfig::Redis { url } => {
                Arc::new(RedisStore::connect(url, config.event_retention)?)
            }
        };
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })
        };
        let public = bind(config.public_addr).await?;
        let admin = bind(config.admin_addr).await?;
        let descriptors = server::raise_descriptor_limit();
        let public_limits = Limits {
            max_connections: server::public_cap(config.max_connections, descriptors),
            header_timeout: config.header_timeout,
            idle_timeout: config.idle_timeout,
        };
        let admin_limits = Limits {
            max_connections: server::ADMIN_MAX_CONNECTIONS,
            ..public_limits
        };
        tracing::info!(
            public_connections = public_limits.max_connections,
            admin_connections = admin_limits.max_connections,
            open_file_limit = descriptors,
            "connection limits"
        );
        // Install the metrics recorder before anything can record, and compile the bot
        // patterns before the first click waits for them.
        http::metrics::handle();
        crate::clicks::bots::warm_up();
        let health = Arc::new(StoreHealth::default());
        let (clicks, recorder) =
            ClickRecorder::spawn(store.clone(), config.dedup_window, health.clone());
        let dispatcher = Dispatcher::new(store.clone(), &config)?;
        let state = AppState::new(Shared {
            cache: Arc::new(LinkCache::new(
                config.cache_capacity,
                config.cache_ttl,
                store.shares_changes(),
                health,
            )),
            auth: admin::auth::AdminAuth::new(&config.admin_tokens),
            config: Arc::new(config),
            store,
            clicks,
        });
        Ok(Self {
            state,
            public,
            admin,
            shutdown: CancellationToken::new(),
            recorder,
            dispatcher,
            public_limits,
            admin_limits,
        })
    }

    pub fn public_addr(&self) -> SocketAddr {
        self.public
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Cancel it to shut the app down gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled, then lets in-flight requests finish
    /// (up to `DRAIN_DEADLINE`), writes the clicks they recorded, and gives deliveries in
    /// flight the same time to finish.
    pub async fn run(self) {
        let Self {
            state,
            public,
            admin,
            shutdown,
            recorder,
            dispatcher,
            public_limits,
            admin_limits,
        } = self;
        let dispatching = state
            .config
            .dispatch
            .then(|| tokio::spawn(dispatcher.run(shutdown.clone(), DRAIN_DEADLINE)));
        let cache = state.cache.clone();
        let listener: ChangeListener = Arc::new(move |change| {
            let cache = cache.clone();
            async move { cache.apply(change) }.boxed()
        });
        state.store.watch_changes(listener, shutdown.clone());
        let cache = state.cache.clone();
        let sweeping = shutdown.clone();
        tokio::spawn(async move { cache.sweep_until(sweeping).await });

        tokio::spawn(http::metrics::run_upkeep(shutdown.clone()));

        let public_service = http::public::PublicService::new(
            state.clone(),
            with_common_layers(http::public::router(state.clone()), "public"),
        );
        let admin_router = with_common_layers(admin::router(state), "admin");
        let public = server::serve(
            public,
            "public",
            public_service,
            public_limits,
            shutdown.clone(),
        );
        let admin = server::serve(admin, "admin", admin_router, admin_limits, shutdown.clone());
        let mut servers = Box::pin(async move {
            tokio::join!(public, admin);
        });
        tokio::select! {
            () = &mut servers => {}
            () = async {
                shutdown.cancelled().await;
                tokio::time::sleep(DRAIN_DEADLINE).await;
            } => {
                tracing::warn!("in-flight requests did not finish within {DRAIN_DEADLINE:?}; stopping");
            }
        };
        // Dropping the servers drops the routers, and with them the last senders of clicks:
        // the recorder writes what it holds and stops.
        drop(servers);
        if tokio::time::timeout(DRAIN_DEADLINE, recorder)
            .await
            .is_err()
        {
            tracing::warn!("click recorder did not finish within {DRAIN_DEADLINE:?}");
        }
        shutdown.cancel();
        if let Some(dispatching) = dispatching {
            let _ = dispatching.await;
        }
    }
}

fn with_common_layers(router: Router, listener: &'static str) -> Router {
    router
        .layer(axum::middleware::from_fn(move |req, next| {
            http::metrics::track(listener, req, next)
        }))
        // A bug in one handler answers 500 for that request; the process keeps serving.
        .layer(CatchPanicLayer::custom(|_| {
            http::error::ApiError::Internal("a handler panicked".into()).into_response()
        }))
}
