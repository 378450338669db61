//! CSV downloads: every link of a campaign with its counters, streamed a page at a time,
//! so that a campaign of a million links is never held in memory.

use crate::domain::{CampaignId, Link, Position, ShortUrls, Stats, format_time};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::Path;
use crate::http::schema;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(links_csv))
}

const LINKS_HEADER: [&str; 11] = [
    "code",
    "shortUrl",
    "url",
    "phone",
    "externalLeadId",
    "createdAt",
    "deliveredAt",
    "firstClickedAt",
    "lastClickedAt",
    "clicks",
    "botClicks",
];

/// Every link of the campaign with its counters, one CSV line each (RFC 4180; empty
/// fields where there is no value), oldest first.
#[utoipa::path(get, path = "/v1/campaigns/{campaignId}/links.csv", tag = "stats",
    params(("campaignId" = schema::CampaignId, Path, description = "Campaign id")),
    responses(
        (status = 200, content_type = "text/csv", body = String,
         description = "code,shortUrl,url,phone,externalLeadId,createdAt,deliveredAt,firstClickedAt,lastClickedAt,clicks,botClicks"),
        (status = 422, description = "Invalid campaign id")))]
async fn links_csv(
    State(state): State<AppState>,
    Path(campaign): Path<String>,
) -> Result<Response, ApiError> {
    links_csv_response(state, CampaignId::parse(&campaign)?)
}

/// The campaign's links as a streamed CSV download (also the dashboard's).
pub fn links_csv_response(state: AppState, campaign: CampaignId) -> Result<Response, ApiError> {
    let filename = format!("{}-links.csv", campaign.as_str());
    let header = csv_lines(std::iter::once(LINKS_HEADER.map(str::to_owned)));
    // The page after `after`, or the end (`None`) once the last page was sent.
    let pages = futures::stream::unfold(Some(Position::start()), move |after| {
        let (state, campaign) = (state.clone(), campaign.clone());
        async move {
            let after = after?;
            match state.links.export_page(&campaign, after).await {
                Ok((links, next)) => {
                    let rows = links.iter().map(|(l, s)| link_row(&state.short_urls, l, s));
                    Some((Ok(csv_lines(rows)), next))
                }
                Err(e) => {
                    // The download is cut short: the client sees it end without the rest.
                    tracing::warn!(error = %e, campaign = campaign.as_str(), "links export stopped");
                    Some((Err(std::io::Error::other(e)), None))
                }
            }
        }
    });
    let body = futures::stream::once(async { Ok(header) }).chain(pages);
    Ok(csv_download(&filename, Body::from_stream(body)))
}

/// A CSV answer the browser saves as `filename`.
pub fn csv_download(filename: &str, body: impl Into<Body>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body.into(),
    )
        .into_response()
}

fn link_row(short_urls: &ShortUrls, link: &Link, stats: &Stats) -> [String; 11] {
    let time = |t: Option<&chrono::DateTime<chrono::Utc>>| t.map(format_time).unwrap_or_default();
    [
        link.code.as_str().to_owned(),
        short_urls.of(link.code.as_str()),
        link.url.as_str().to_owned(),
        link.phone
            .as_ref()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        (link.external_lead_id.as_ref())
            .map(|x| x.as_str().to_owned())
            .unwrap_or_default(),
        format_time(&link.created_at),
        time(stats.delivered_at.as_ref()),
        time(stats.first_clicked_at.as_ref()),
        time(stats.last_clicked_at.as_ref()),
        stats.clicks.to_string(),
        stats.bot_clicks.to_string(),
    ]
}

/// Rows as CSV text, each line ending in CRLF.
fn csv_lines(rows: impl Iterator<Item = [String; 11]>) -> Bytes {
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for row in rows {
        // Writing to memory cannot fail.
        let _ = out.write_record(&row);
    }
    Bytes::from(out.into_inner().unwrap_or_default())
}
