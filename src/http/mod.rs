//! The two HTTP listeners.
//!
//! - [`public`]: redirects and health checks; the only listener exposed to leads.
//! - [`admin`]: the `/v1` API (bearer token), its OpenAPI document and `/metrics`. It
//!   shares no routes with the public listener, so nothing public can reach it.

pub mod admin;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod public;
pub mod twilio;

use crate::cache::LinkCache;
use crate::clicks::recorder::ClickRecorder;
use crate::config::Config;
use crate::store::Store;
use std::sync::Arc;

/// What every handler may use; clones are cheap (all `Arc`s).
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub cache: Arc<LinkCache>,
    pub auth: Arc<admin::auth::AdminAuth>,
    pub clicks: ClickRecorder,
}

impl AppState {
    /// The public short URL of `code`.
    pub fn short_url(&self, code: &str) -> String {
        format!("{}/{code}", self.config.base_url)
    }
}
