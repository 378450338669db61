//! Builds the service from a [`Config`]: the store, the cache, the use cases, both
//! listeners and the background tasks; runs them until shut down.
//!
//! Each `App` has its own shutdown token, so that tests can run many apps in one process
//! and stop each one alone.

use crate::background::Background;
use crate::cache::LinkCache;
use crate::clicks::Clicks;
use crate::clicks::recorder::ClickRecorder;
use crate::config::{Config, StoreConfig};
use crate::dispatch::Dispatcher;
use crate::http::server::{self, Limits};
use crate::http::{self, AppState, Handlers, admin};
use crate::service::{Campaigns, Links, Messages, Webhooks};
use crate::store::health::StoreHealth;
use crate::store::{ChangeFeed, Store, StoreError, embedded::EmbeddedStore, redis::RedisStore};
use axum::Router;
use axum::response::IntoResponse;
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
    #[error("{0}")]
    Layout(#[from] crate::store::redis::LayoutMismatch),
    #[error("cannot start the dispatcher's threads: {0}")]
    Runtime(#[source] std::io::Error),
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
    /// And the runtime it runs on; `None` when this instance does not dispatch
    /// (`AKTI_DISPATCH=false`).
    dispatcher: Option<(Arc<Dispatcher>, Background)>,
    feed: Option<Arc<dyn ChangeFeed>>,
    limits: (Limits, Limits),
}

/// A backend: its store, and its change feed when other instances share it.
type Backend = (Arc<dyn Store>, Option<Arc<dyn ChangeFeed>>);

/// The store, and its change feed when other instances share it.
async fn open_store(config: &Config) -> Result<Backend, StartError> {
    Ok(match config.store() {
        StoreConfig::Embedded { data_dir } => (
            Arc::new(EmbeddedStore::open(&data_dir, config.event_retention)?),
            None,
        ),
        StoreConfig::Redis { url } => {
            let redis = Arc::new(RedisStore::connect(
                &url,
                config.event_retention,
                config.redis_wait_replicas,
            )?);
            redis.prepare().await?;
            (redis.clone(), Some(redis))
        }
    })
}

impl App {
    /// Opens the store and binds both listeners; serves nothing until [`App::run`].
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let (store, feed) = open_store(&config).await?;
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })
        };
        let public = bind(config.public_addr).await?;
        let admin = bind(config.admin_addr).await?;
        let descriptors = server::raise_descriptor_limit();
        let limits = config.listener_limits(descriptors);
        tracing::info!(
            public_connections = limits.0.max_connections,
            admin_connections = limits.1.max_connections,
            open_file_limit = descriptors,
            "connection limits"
        );
        // Install the metrics recorder before anything can record, and compile the bot
        // patterns before the first click waits for them.
        http::metrics::handle();
        crate::clicks::bots::warm_up();
        let dispatcher = (config.dispatch)
            .then(|| -> Result<_, StartError> {
                let runtime = Background::new("akti-dispatch").map_err(StartError::Runtime)?;
                Ok((Dispatcher::new(&config.webhooks())?, runtime))
            })
            .transpose()?;
        let (state, recorder) = handlers(&config, store, feed.clone());
        Ok(Self {
            state,
            public,
            admin,
            shutdown: CancellationToken::new(),
            recorder,
            dispatcher,
            feed,
            limits,
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

    /// The store the app uses: for a program that embeds the app (or a test) to look into.
    pub fn store(&self) -> Arc<dyn Store> {
        self.state.store.clone()
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
            feed,
            limits,
        } = self;
        let dispatching = dispatcher.map(|(dispatcher, runtime)| {
            let work = dispatcher.run(state.store.clone(), shutdown.clone(), DRAIN_DEADLINE);
            tokio::spawn(runtime.run(work))
        });
        if let Some(feed) = feed {
            feed.watch(state.cache.clone(), shutdown.clone());
        }
        let cache = state.cache.clone();
        let sweeping = shutdown.clone();
        tokio::spawn(async move { cache.sweep_until(sweeping).await });
        tokio::spawn(http::metrics::run_upkeep(shutdown.clone()));

        let public_service = http::public::PublicService::new(
            state.clone(),
            with_common_layers(http::public::router(state.clone()), "public"),
        );
        let admin_router = with_common_layers(admin::router(state), "admin");
        let public = server::serve(public, "public", public_service, limits.0, shutdown.clone());
        let admin = server::serve(admin, "admin", admin_router, limits.1, shutdown.clone());
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

/// The use cases and what the handlers share, and the click recorder's task.
fn handlers(
    config: &Config,
    store: Arc<dyn Store>,
    feed: Option<Arc<dyn ChangeFeed>>,
) -> (AppState, tokio::task::JoinHandle<()>) {
    let health = Arc::new(StoreHealth::default());
    let (recorder, recording) =
        ClickRecorder::spawn(store.clone(), config.dedup_window, health.clone());
    let cache = Arc::new(LinkCache::new(
        store.clone(),
        config.cache_capacity,
        config.cache_ttl,
        feed.is_some(),
        health,
    ));
    let short_urls = config.short_urls();
    let state = AppState::new(Handlers {
        links: Links::new(
            store.clone(),
            store.clone(),
            store.clone(),
            cache.clone(),
            feed,
            config.code_length,
        ),
        campaigns: Campaigns::new(store.clone(), store.clone()),
        messages: Messages::new(
            store.clone(),
            store.clone(),
            short_urls.clone(),
            config.code_length,
            config.message_ttl,
        ),
        webhooks: Webhooks::new(store.clone(), store.clone(), config.webhook_allow_private),
        store,
        cache,
        clicks: Clicks::new(recorder, short_urls.clone()),
        auth: admin::auth::AdminAuth::new(&config.admin_token),
        sessions: Default::default(),
        short_urls,
        fallback_url: config.fallback_url.clone(),
        twilio_auth_token: config.twilio_auth_token.clone(),
    });
    (state, recording)
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
