//! The two HTTP listeners.
//!
//! - [`public`]: redirects and health checks; the only listener exposed to leads.
//! - [`admin`]: the `/v1` API (bearer token), its OpenAPI document and `/metrics`. It
//!   shares no routes with the public listener, so nothing public can reach it.

pub mod admin;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod public;
pub mod schema;
pub mod server;
pub mod twilio;

use crate::cache::LinkCache;
use crate::clicks::recorder::ClickRecorder;
use crate::config::Config;
use crate::store::Store;
use std::sync::Arc;

/// What every handler may use. One `Arc`, so that the clone axum makes for every request
/// is a single atomic increment.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub cache: Arc<LinkCache>,
    pub auth: admin::auth::AdminAuth,
    pub clicks: ClickRecorder,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl AppState {
    /// The public short URL of `code`.
    pub fn short_url(&self, code: &str) -> String {
        format!("{}/{code}", self.config.base_url)
    }
}
