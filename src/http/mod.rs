//! The two HTTP listeners.
//!
//! - [`public`]: redirects, health checks and the Twilio callback; the only listener
//!   exposed to leads.
//! - [`admin`]: the `/v1` API (bearer token), its OpenAPI document and `/metrics`, and the
//!   [`dashboard`] (a session cookie). It shares no routes with the public listener, so
//!   nothing public can reach it.
//!
//! Handlers parse a request into the domain's types, call one use case of
//! [`crate::service`] and answer.

pub mod admin;
pub mod dashboard;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod public;
pub mod schema;
pub mod server;
pub mod twilio;

use crate::cache::LinkCache;
use crate::clicks::Clicks;
use crate::domain::ShortUrls;
use crate::service::{Campaigns, Links, Messages, Webhooks};
use crate::store::Store;
use std::sync::Arc;

/// What every handler may use. One `Arc`, so that the clone axum makes for every request
/// is a single atomic increment.
#[derive(Clone)]
pub struct AppState(Arc<Handlers>);

/// The use cases and what the listeners need besides.
pub struct Handlers {
    pub links: Links,
    pub campaigns: Campaigns,
    pub messages: Messages,
    pub webhooks: Webhooks,
    /// For `/readyz`.
    pub store: Arc<dyn Store>,
    pub cache: Arc<LinkCache>,
    pub clicks: Clicks,
    pub auth: admin::auth::AdminAuth,
    /// Signed-in dashboard sessions.
    pub sessions: dashboard::session::Sessions,
    pub short_urls: ShortUrls,
    /// Where unknown, disabled and expired codes go instead of the 404/410 pages.
    pub fallback_url: Option<String>,
    /// Validates Twilio's callbacks; `None`: every callback is refused.
    pub twilio_auth_token: Option<String>,
}

impl std::ops::Deref for AppState {
    type Target = Handlers;

    fn deref(&self) -> &Handlers {
        &self.0
    }
}

impl AppState {
    pub fn new(handlers: Handlers) -> Self {
        Self(Arc::new(handlers))
    }
}
