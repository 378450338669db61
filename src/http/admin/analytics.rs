//! A campaign's analytics: the funnel, clicks over time in a time zone, time to click and
//! systems, as JSON and as CSV.

use crate::domain::analytics::{AnalyticsQuery, BucketCounts, Os, Report, TTC_BANDS};
use crate::domain::{CampaignId, now_millis};
use crate::http::AppState;
use crate::http::admin::exports::csv_download;
use crate::http::error::ApiError;
use crate::http::extract::{Path, Query};
use crate::http::schema;
use axum::Json;
use axum::extract::State;
use axum::response::Response;
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(analytics))
        .routes(routes!(analytics_csv))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AnalyticsParams {
    /// RFC 3339; default `to` − 7 days.
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<String>,
    /// RFC 3339, after `from`; default now.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<String>,
    /// `minute` (only within the last 48 hours), `hour` or `day`; default `hour` for a
    /// range of up to 3 days, else `day`. At most 1,500 buckets.
    #[param(value_type = Option<String>, pattern = "^(minute|hour|day)$")]
    pub interval: Option<String>,
    /// An IANA time-zone name; buckets start on its minutes, hours or midnights. Default
    /// `UTC`.
    #[param(value_type = Option<String>, example = "America/Sao_Paulo")]
    pub tz: Option<String>,
}

impl AnalyticsParams {
    pub fn query(&self) -> Result<AnalyticsQuery, ApiError> {
        Ok(AnalyticsQuery::parse(
            self.from.as_deref(),
            self.to.as_deref(),
            self.interval.as_deref(),
            self.tz.as_deref(),
            now_millis(),
        )?)
    }
}

/// One bucket's counters.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BucketBody {
    /// The bucket's start in `tz`, with its offset.
    start: String,
    clicks: u64,
    /// Links whose first human click fell in the bucket.
    unique_clicks: u64,
    click_events: u64,
    bot_clicks: u64,
    messages_sent: u64,
    messages_delivered: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TotalsBody {
    clicks: u64,
    unique_clicks: u64,
    click_events: u64,
    bot_clicks: u64,
    messages_sent: u64,
    messages_delivered: u64,
    /// `uniqueClicks` ÷ `messagesDelivered`; `null` when nothing was delivered.
    click_through_rate: Option<f64>,
}

/// Links whose time from delivery to first human click is above the previous band's `le`
/// and at most this one's.
#[derive(Debug, Serialize, ToSchema)]
pub struct BandBody {
    /// Seconds; `null`: beyond a day.
    le: Option<i64>,
    links: u64,
}

/// Human clicks by the clicker's system.
#[derive(Debug, Serialize, ToSchema)]
pub struct OsBody {
    #[serde(rename = "iOS")]
    ios: u64,
    #[serde(rename = "Android")]
    android: u64,
    #[serde(rename = "Windows")]
    windows: u64,
    #[serde(rename = "macOS")]
    macos: u64,
    #[serde(rename = "Linux")]
    linux: u64,
    other: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalyticsBody {
    campaign_id: String,
    /// The range asked for, in `tz`.
    from: String,
    to: String,
    interval: String,
    tz: String,
    totals: TotalsBody,
    /// Every bucket of the range, the empty ones too, oldest first.
    series: Vec<BucketBody>,
    time_to_click: Vec<BandBody>,
    os: OsBody,
}

impl AnalyticsBody {
    pub fn of(campaign: &CampaignId, report: &Report) -> Self {
        let q = &report.query;
        let in_tz = |t: &chrono::DateTime<chrono::Utc>| {
            t.with_timezone(&q.tz)
                .to_rfc3339_opts(SecondsFormat::AutoSi, false)
        };
        let t = &report.totals;
        let os = |o: Os| t.os[o.index()];
        Self {
            campaign_id: campaign.as_str().to_owned(),
            from: in_tz(&q.from),
            to: in_tz(&q.to),
            interval: q.interval.name().to_owned(),
            tz: q.tz.name().to_owned(),
            totals: TotalsBody {
                clicks: t.clicks,
                unique_clicks: t.unique_clicks,
                click_events: t.click_events,
                bot_clicks: t.bot_clicks,
                messages_sent: t.messages_sent,
                messages_delivered: t.messages_delivered,
                click_through_rate: report.click_through_rate(),
            },
            series: (report.series.iter())
                .map(|b| bucket_body(bucket_start(&b.start), &b.counts))
                .collect(),
            time_to_click: (TTC_BANDS.iter().zip(t.time_to_click))
                .map(|(le, links)| BandBody { le: *le, links })
                .collect(),
            os: OsBody {
                ios: os(Os::Ios),
                android: os(Os::Android),
                windows: os(Os::Windows),
                macos: os(Os::MacOs),
                linux: os(Os::Linux),
                other: os(Os::Other),
            },
        }
    }
}

/// A bucket's start as the API shows it: in the zone, to the second, with the offset.
pub fn bucket_start(start: &chrono::DateTime<chrono_tz::Tz>) -> String {
    start.to_rfc3339_opts(SecondsFormat::Secs, false)
}

fn bucket_body(start: String, c: &BucketCounts) -> BucketBody {
    BucketBody {
        start,
        clicks: c.clicks,
        unique_clicks: c.unique_clicks,
        click_events: c.click_events,
        bot_clicks: c.bot_clicks,
        messages_sent: c.messages_sent,
        messages_delivered: c.messages_delivered,
    }
}

/// Clicks over time (humans and bots apart), unique clicks, messages, the click-through
/// rate, time to click and systems, over a range in a time zone (zero for an unknown
/// campaign).
#[utoipa::path(get, path = "/v1/campaigns/{campaignId}/analytics", tag = "stats",
    params(("campaignId" = schema::CampaignId, Path, description = "Campaign id"), AnalyticsParams),
    responses((status = 200, body = AnalyticsBody),
        (status = 422, description = "Invalid campaign id or parameter")))]
async fn analytics(
    State(state): State<AppState>,
    Path(campaign): Path<String>,
    Query(params): Query<AnalyticsParams>,
) -> Result<Json<AnalyticsBody>, ApiError> {
    let campaign = CampaignId::parse(&campaign)?;
    let report = state
        .campaigns
        .analytics(&campaign, &params.query()?)
        .await?;
    Ok(Json(AnalyticsBody::of(&campaign, &report)))
}

/// The same series as CSV: a header line, then one line per bucket.
#[utoipa::path(get, path = "/v1/campaigns/{campaignId}/analytics.csv", tag = "stats",
    params(("campaignId" = schema::CampaignId, Path, description = "Campaign id"), AnalyticsParams),
    responses(
        (status = 200, content_type = "text/csv", body = String,
         description = "start,clicks,uniqueClicks,clickEvents,botClicks,messagesSent,messagesDelivered"),
        (status = 422, description = "Invalid campaign id or parameter")))]
async fn analytics_csv(
    State(state): State<AppState>,
    Path(campaign): Path<String>,
    Query(params): Query<AnalyticsParams>,
) -> Result<Response, ApiError> {
    let campaign = CampaignId::parse(&campaign)?;
    let report = state
        .campaigns
        .analytics(&campaign, &params.query()?)
        .await?;
    Ok(series_csv(&campaign, &report))
}

/// A report's series as a CSV download.
pub fn series_csv(campaign: &CampaignId, report: &Report) -> Response {
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    // Writing to memory cannot fail.
    let _ = out.write_record([
        "start",
        "clicks",
        "uniqueClicks",
        "clickEvents",
        "botClicks",
        "messagesSent",
        "messagesDelivered",
    ]);
    for b in &report.series {
        let c = &b.counts;
        let _ = out.write_record([
            bucket_start(&b.start),
            c.clicks.to_string(),
            c.unique_clicks.to_string(),
            c.click_events.to_string(),
            c.bot_clicks.to_string(),
            c.messages_sent.to_string(),
            c.messages_delivered.to_string(),
        ]);
    }
    let filename = format!("{}-analytics.csv", campaign.as_str());
    csv_download(&filename, out.into_inner().unwrap_or_default())
}
