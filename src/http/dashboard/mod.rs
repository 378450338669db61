//! The dashboard at `/dashboard` on the admin listener: campaigns and their analytics for
//! the people who run them, server-rendered HTML with SVG charts (it works without a
//! script; its own small script only refreshes the page while it is open).
//!
//! Signing in takes an admin token once and gives a session cookie ([`session`]); every
//! other page and download asks for that session, and sends the browser back to the
//! sign-in page without it.

mod charts;
mod pages;
pub mod session;

use crate::domain::analytics::AnalyticsQuery;
use crate::domain::{CampaignId, Position, now_millis};
use crate::http::AppState;
use crate::http::admin::{analytics::series_csv, exports::links_csv_response};
use crate::http::error::ApiError;
use crate::http::extract::{Path, Query, cursor};
use axum::Form;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::Markup;
use serde::Deserialize;

/// Links per page of a campaign's table.
const LINKS_PER_PAGE: usize = 25;
const CAMPAIGNS_PER_PAGE: usize = 50;
/// Only our own files, no inline script, and no framing by other sites.
const POLICY: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
                      connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn router(state: AppState) -> Router<AppState> {
    // Everything under a campaign needs a session; without one, the sign-in page.
    let signed_in = Router::new()
        .route("/dashboard/campaigns/{campaign}", get(campaign))
        .route("/dashboard/campaigns/{campaign}/links.csv", get(links_csv))
        .route(
            "/dashboard/campaigns/{campaign}/analytics.csv",
            get(analytics_csv),
        )
        .layer(axum::middleware::from_fn_with_state(state, require_session));
    Router::new()
        .merge(signed_in)
        .route("/dashboard", get(home))
        .route("/dashboard/sign-in", post(sign_in))
        .route("/dashboard/sign-out", post(sign_out))
        .route(
            "/dashboard/assets/dashboard.css",
            get(|| asset("text/css", include_str!("assets/dashboard.css"))),
        )
        .route(
            "/dashboard/assets/dashboard.js",
            get(|| asset("text/javascript", include_str!("assets/dashboard.js"))),
        )
}

async fn asset(kind: &'static str, text: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        text,
    )
        .into_response()
}

fn page(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, Html(markup.into_string())).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}

async fn require_session(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if state.sessions.is_signed_in(request.headers()) {
        next.run(request).await
    } else {
        Redirect::to("/dashboard").into_response()
    }
}

#[derive(Debug, Deserialize)]
struct ListParams {
    cursor: Option<String>,
}

async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    if !state.sessions.is_signed_in(&headers) {
        return Ok(page(StatusCode::OK, pages::sign_in(None)));
    }
    let list = state
        .campaigns
        .list(cursor(params.cursor.as_deref())?, CAMPAIGNS_PER_PAGE)
        .await?;
    Ok(page(
        StatusCode::OK,
        pages::campaign_list(&list.items, list.next_cursor.as_deref()),
    ))
}

#[derive(Deserialize)]
struct SignIn {
    token: String,
}

async fn sign_in(State(state): State<AppState>, Form(form): Form<SignIn>) -> Response {
    if !state.auth.accepts_token(&form.token) {
        return page(
            StatusCode::UNAUTHORIZED,
            pages::sign_in(Some("That token is not an admin token of this service.")),
        );
    }
    let cookie = state.sessions.start();
    let mut response = Redirect::to("/dashboard").into_response();
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let cleared = state.sessions.end(&headers);
    let mut response = Redirect::to("/dashboard").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, HeaderValue::from_static(cleared));
    response
}

/// The campaign page's controls: a range ending now, an interval, a zone; and where the
/// links table is.
#[derive(Debug, Deserialize)]
struct CampaignParams {
    range: Option<String>,
    interval: Option<String>,
    tz: Option<String>,
    links: Option<String>,
}

impl CampaignParams {
    fn query(&self) -> Result<AnalyticsQuery, String> {
        let hours = (pages::RANGES.iter())
            .find(|(value, _, _)| Some(*value) == self.range.as_deref())
            .map_or(7 * 24, |(_, _, hours)| *hours);
        let now = now_millis();
        let from = (now - chrono::Duration::hours(hours)).to_rfc3339();
        let interval = self.interval.as_deref().filter(|i| *i != "auto");
        let tz = self.tz.as_deref().filter(|t| !t.is_empty());
        AnalyticsQuery::parse(Some(&from), None, interval, tz, now)
            .map_err(|e| format!("No chart for these choices: {} {}.", e.field, e.message))
    }
}

async fn campaign(
    State(state): State<AppState>,
    Path(campaign): Path<String>,
    Query(params): Query<CampaignParams>,
) -> Result<Response, ApiError> {
    let id = CampaignId::parse(&campaign)?;
    let totals = state.campaigns.totals(&id).await?;
    let report = match params.query() {
        Ok(query) => Ok(state.campaigns.analytics(&id, &query).await?),
        Err(message) => Err(message),
    };
    let after = (params.links.as_deref())
        .and_then(Position::parse)
        .unwrap_or_else(Position::start);
    let (links, next) = state.links.links_page(&id, after, LINKS_PER_PAGE).await?;
    let short_url = |code: &str| state.short_urls.of(code);
    let markup = pages::campaign(&pages::CampaignPage {
        campaign: id.as_str(),
        totals: &totals,
        report,
        range: params.range.as_deref().unwrap_or("7d"),
        interval: params.interval.as_deref().unwrap_or("auto"),
        tz: params.tz.as_deref().unwrap_or("UTC"),
        links: &links,
        short_url: &short_url,
        next_links: next.map(|p| p.render()),
    });
    Ok(page(StatusCode::OK, markup))
}

async fn links_csv(
    State(state): State<AppState>,
    Path(campaign): Path<String>,
) -> Result<Response, ApiError> {
    links_csv_response(state, CampaignId::parse(&campaign)?)
}

async fn analytics_csv(
    State(state): State<AppState>,
    Path(campaign): Path<String>,
    Query(params): Query<CampaignParams>,
) -> Result<Response, ApiError> {
    let id = CampaignId::parse(&campaign)?;
    let query = params.query().map_err(|m| ApiError::invalid("range", m))?;
    let report = state.campaigns.analytics(&id, &query).await?;
    Ok(series_csv(&id, &report))
}
