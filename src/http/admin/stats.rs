//! Click and message counters of a link and of a campaign.

use crate::domain::{CampaignId, ShortCode, format_time};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Path, Query, cursor, page_limit};
use crate::http::schema;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(link_stats))
        .routes(routes!(campaign_stats))
        .routes(routes!(list_campaigns))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkStatsBody {
    /// Human clicks (bots and previews excluded).
    clicks: u64,
    /// `lead.link_clicked` events emitted.
    click_events: u64,
    bot_clicks: u64,
    last_clicked_at: Option<String>,
    /// The first human click.
    first_clicked_at: Option<String>,
    /// When a message carrying the link was first reported delivered.
    delivered_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignStatsBody {
    links: u64,
    clicks: u64,
    click_events: u64,
    bot_clicks: u64,
    last_clicked_at: Option<String>,
    messages_sent: u64,
    messages_delivered: u64,
}

fn time(at: &Option<chrono::DateTime<chrono::Utc>>) -> Option<String> {
    at.as_ref().map(format_time)
}

#[utoipa::path(get, path = "/v1/links/{code}/stats", tag = "stats",
    params(("code" = schema::ShortCode, Path, description = "Short code")),
    responses((status = 200, body = LinkStatsBody), (status = 404, description = "No such link")))]
async fn link_stats(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<Json<LinkStatsBody>, ApiError> {
    let code = ShortCode::parse(&code).map_err(|_| ApiError::NotFound("link"))?;
    let stats = (state.links.stats(&code).await?).ok_or(ApiError::NotFound("link"))?;
    Ok(Json(LinkStatsBody {
        clicks: stats.clicks,
        click_events: stats.click_events,
        bot_clicks: stats.bot_clicks,
        last_clicked_at: time(&stats.last_clicked_at),
        first_clicked_at: time(&stats.first_clicked_at),
        delivered_at: time(&stats.delivered_at),
    }))
}

/// The counters summed over every link of the campaign (zero for an unknown campaign).
#[utoipa::path(get, path = "/v1/campaigns/{campaignId}/stats", tag = "stats",
    params(("campaignId" = schema::CampaignId, Path, description = "Campaign id")),
    responses((status = 200, body = CampaignStatsBody), (status = 422, description = "Invalid campaign id")))]
async fn campaign_stats(
    State(state): State<AppState>,
    Path(campaign): Path<String>,
) -> Result<Json<CampaignStatsBody>, ApiError> {
    let campaign = CampaignId::parse(&campaign)?;
    let totals = state.campaigns.totals(&campaign).await?;
    let (links, stats) = (totals.links, totals.stats);
    Ok(Json(CampaignStatsBody {
        links,
        clicks: stats.clicks,
        click_events: stats.click_events,
        bot_clicks: stats.bot_clicks,
        last_clicked_at: time(&stats.last_clicked_at),
        messages_sent: stats.messages_sent,
        messages_delivered: stats.messages_delivered,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignSummaryBody {
    campaign_id: String,
    links: u64,
    clicks: u64,
    /// Links with a human click: for one link per lead, the leads who clicked.
    unique_clicks: u64,
    click_events: u64,
    bot_clicks: u64,
    messages_sent: u64,
    messages_delivered: u64,
    /// When its first link was created.
    created_at: String,
    last_clicked_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignPageBody {
    campaigns: Vec<CampaignSummaryBody>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CampaignListParams {
    /// The `nextCursor` of the page before.
    #[param(value_type = Option<String>, pattern = r"^[0-9]{13}:[A-Za-z0-9_-]{1,64}$")]
    cursor: Option<String>,
    /// Default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

/// List campaigns, the one whose first link was created last first, with their counters.
#[utoipa::path(get, path = "/v1/campaigns", tag = "stats", params(CampaignListParams),
    responses((status = 200, body = CampaignPageBody), (status = 422, description = "Invalid parameter")))]
async fn list_campaigns(
    State(state): State<AppState>,
    Query(params): Query<CampaignListParams>,
) -> Result<Json<CampaignPageBody>, ApiError> {
    let limit = page_limit(params.limit.as_deref())?;
    let before = cursor(params.cursor.as_deref())?;
    let page = state.campaigns.list(before, limit).await?;
    let campaigns = (page.items.into_iter())
        .map(|c| {
            let stats = &c.totals.stats;
            CampaignSummaryBody {
                campaign_id: c.id.as_str().to_owned(),
                links: c.totals.links,
                clicks: stats.clicks,
                unique_clicks: stats.unique_clicks,
                click_events: stats.click_events,
                bot_clicks: stats.bot_clicks,
                messages_sent: stats.messages_sent,
                messages_delivered: stats.messages_delivered,
                created_at: format_time(&c.created_at),
                last_clicked_at: time(&stats.last_clicked_at),
            }
        })
        .collect();
    Ok(Json(CampaignPageBody {
        campaigns,
        next_cursor: page.next_cursor,
    }))
}
