//! The admin listener: the `/v1` API behind bearer tokens, its OpenAPI document, and
//! `/metrics`, `/healthz`, `/readyz` for operators.
//!
//! The `/v1` operations' OpenAPI descriptions are collected from the handlers'
//! `#[utoipa::path]` annotations as the routes are registered (see [`super::openapi`]).

pub mod analytics;
pub mod auth;
pub mod campaigns;
pub mod exports;
pub mod leads;
pub mod links;
pub mod messages;
pub mod stats;
pub mod webhooks;

use super::error::ApiError;
use super::{AppState, metrics, public};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use utoipa_axum::router::OpenApiRouter;

/// A bulk call of 10,000 leads with long external ids stays well below this.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

pub fn router(state: AppState) -> Router {
    let (api, openapi) = OpenApiRouter::new()
        .merge(analytics::router())
        .merge(campaigns::router())
        .merge(exports::router())
        .merge(leads::router())
        .merge(links::router())
        .merge(messages::router())
        .merge(stats::router())
        .merge(webhooks::router())
        .split_for_parts();
    // Rendered once: the document cannot change while the process runs.
    let openapi = super::openapi::document(openapi, state.short_urls.base());
    let openapi = axum::body::Bytes::from(openapi.to_pretty_json().unwrap_or_default());
    api.route(
        "/v1/openapi.json",
        get(move || async move {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                openapi,
            )
        }),
    )
    .merge(super::dashboard::router(state.clone()))
    .route("/metrics", get(metrics::render))
    .route("/healthz", get(public::healthz))
    .route("/readyz", get(public::readyz))
    .fallback(|| async { ApiError::NotFound("route") })
    .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
    // Applied to the fallbacks too, so an unknown `/v1` path without a token is a 401,
    // not a map of which routes exist.
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require_token,
    ))
    .with_state(state)
    .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}
