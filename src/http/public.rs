//! The public listener: `GET|HEAD /{code}` redirects, `/healthz`, `/readyz`.

mod service;

pub use service::PublicService;

use super::AppState;
use crate::clicks::agents::Agent;
use crate::domain::{Device, ShortCode, now_millis};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use std::time::Duration;

/// Every answer on this listener tells browsers and proxies not to keep it: each repeat
/// click must reach us to be counted.
const NO_STORE: HeaderValue = HeaderValue::from_static("private, no-store");
/// How long `/readyz` waits for the store before calling it unavailable.
const READY_TIMEOUT: Duration = Duration::from_secs(1);

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/{code}", get(redirect))
        .route(
            "/callbacks/twilio/status",
            axum::routing::post(super::twilio::status_callback),
        )
        .fallback(not_found_page)
        .with_state(state)
        // Nothing public takes a large body; the Twilio callback is a few hundred bytes.
        .layer(DefaultBodyLimit::max(64 * 1024))
}

/// Answers while the process runs (on both listeners).
#[utoipa::path(get, path = "/healthz", tag = "operators", security(()),
    responses((status = 200, description = "The process runs", content_type = "text/plain", body = String)))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Answers `200` while the store answers (on both listeners).
#[utoipa::path(get, path = "/readyz", tag = "operators", security(()),
    responses(
        (status = 200, description = "The store answers", content_type = "text/plain", body = String),
        (status = 503, description = "The store does not answer", content_type = "text/plain", body = String),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response(),
    }
}

/// `GET /{code}` through the router (axum answers `HEAD` with the same handler, without
/// the body). Real traffic takes [`PublicService`]'s shortcut to [`follow`]; this route keeps
/// the router complete on its own (and answers other methods with `405`).
#[utoipa::path(get, path = "/{code}", tag = "public",
    description = "A lead follows a short link: `302` to the destination. A human click emits \
        `lead.link_clicked` for a link with a lead, at most once per dedup window; previews, \
        scanners and bots are only counted. Unknown codes are `404`, disabled or expired links \
        `410` (or a `302` to `AKTI_FALLBACK_URL` for both).",
    security(()),
    params(("code" = super::schema::ShortCode, Path, description = "Short code")),
    responses(
        (status = 302, description = "The link's destination",
            headers(("location" = String), ("cache-control" = String), ("content-length" = String))),
        (status = 404, description = "No such link", content_type = "text/html", body = String),
        (status = 410, description = "Disabled or expired", content_type = "text/html", body = String),
        (status = 503, description = "The store is unavailable and the link is not cached",
            content_type = "text/html", body = String, headers(("retry-after" = String))),
    ))]
pub(crate) async fn redirect(
    State(state): State<AppState>,
    code: Result<Path<String>, axum::extract::rejection::PathRejection>,
    // Taken whole (it is the last extractor) so that its headers are read, not cloned.
    request: Request,
) -> Response {
    // Undecodable paths are answered without touching the cache or the store.
    let Ok(Path(code)) = code else {
        return not_found(&state);
    };
    let query = request.uri().query();
    follow(&state, &code, query, request.method(), request.headers()).await
}

/// Answers a request for the short code `code` (already percent-decoded) with the short
/// URL's `query`: the redirect, recording the click, or the page that says why not.
pub async fn follow(
    state: &AppState,
    code: &str,
    query: Option<&str>,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    // Junk (not a possible code) is answered without touching the cache or the store.
    if !ShortCode::is_valid(code) {
        return not_found(state);
    }
    match state.cache.lookup(code).await {
        Ok(Some(entry)) => {
            // One clock read for both: whether the link is live, and the click's time.
            let now = now_millis();
            if entry.check_live(now).is_err() {
                return gone(state);
            }
            let agent = (headers.get(header::USER_AGENT)).and_then(|v| v.to_str().ok());
            let agent = Agent::of(agent);
            // The cache admits only links whose URLs are header values.
            let Some(location) = entry.location(Device::of(agent.os), query) else {
                return unavailable();
            };
            if method != Method::HEAD {
                state.clicks.record(&entry, agent, now).await;
            }
            found(location)
        }
        Ok(None) => not_found(state),
        Err(e) => {
            tracing::warn!(error = %e, "redirect lookup failed: store unavailable");
            unavailable()
        }
    }
}

/// The redirect. Its length is set here because hyper leaves it out of the answer to a
/// `HEAD`, which must carry the same headers as the `GET`.
fn found(location: HeaderValue) -> Response {
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, NO_STORE),
            (header::CONTENT_LENGTH, HeaderValue::from_static("0")),
        ],
    )
        .into_response()
}

fn fallback(state: &AppState) -> Option<Response> {
    let url = state.fallback_url.as_deref()?;
    HeaderValue::from_str(url).ok().map(found)
}

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title></head><body style=\"font-family:system-ui,sans-serif;\
         max-width:32rem;margin:4rem auto;padding:0 1rem\"><h1>{title}</h1><p>{text}</p>\
         </body></html>"
    );
    (status, [(header::CACHE_CONTROL, NO_STORE)], Html(html)).into_response()
}

fn not_found(state: &AppState) -> Response {
    fallback(state).unwrap_or_else(|| {
        page(
            StatusCode::NOT_FOUND,
            "Link not found",
            "This link does not exist. Please check the address in your message.",
        )
    })
}

fn gone(state: &AppState) -> Response {
    fallback(state).unwrap_or_else(|| {
        page(
            StatusCode::GONE,
            "Link no longer available",
            "This link has expired or has been turned off.",
        )
    })
}

fn unavailable() -> Response {
    let mut response = page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "We could not open this link right now. Please try again in a moment.",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

async fn not_found_page(State(state): State<AppState>) -> Response {
    not_found(&state)
}
