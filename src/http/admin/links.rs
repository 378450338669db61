//! `/v1/links`: create (single and bulk), get, patch, delete and list links.

use crate::domain::{
    CampaignId, Destination, ExternalLeadId, InvalidValue, Link, LinkPatch, NewLink, Phone,
    Position, Routing, ShortCode, format_time, from_millis, now_millis,
};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query, cursor, page_limit};
use crate::http::schema;
use crate::store::LinkQuery;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Most leads in one bulk call.
pub const MAX_BULK_LEADS: usize = 10_000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_link, list_links))
        .routes(routes!(create_links_bulk))
        .routes(routes!(get_link, patch_link, delete_link))
}

/// A link as the API shows it. Every field is present; `null` where there is no value.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkBody {
    #[schema(example = "k3Jx9QaZ")]
    code: String,
    #[schema(example = "https://link.akti.fyi/k3Jx9QaZ")]
    short_url: String,
    /// The destination, normalised.
    #[schema(example = "https://example.com/offer")]
    url: String,
    campaign_id: String,
    /// E.164; `null` for a link without a lead.
    phone: Option<String>,
    external_lead_id: Option<String>,
    #[schema(example = "2026-02-09T12:00:00.000Z")]
    created_at: String,
    expires_at: Option<String>,
    disabled: bool,
    /// Where clicks from iPhones and iPads go instead of `url`.
    ios_url: Option<String>,
    /// Where clicks from Android devices go instead of `url`.
    android_url: Option<String>,
    /// Whether the short URL's query parameters are appended to the destination's.
    forward_query: bool,
}

impl LinkBody {
    fn new(state: &AppState, link: &Link) -> Self {
        Self {
            code: link.code.to_string(),
            short_url: state.short_urls.of(link.code.as_str()),
            url: link.url.as_str().to_owned(),
            campaign_id: link.campaign_id.as_str().to_owned(),
            phone: link.phone.as_ref().map(|p| p.as_str().to_owned()),
            external_lead_id: link
                .external_lead_id
                .as_ref()
                .map(|x| x.as_str().to_owned()),
            created_at: format_time(&link.created_at),
            expires_at: link.expires_at.as_ref().map(format_time),
            disabled: link.disabled,
            ios_url: link.routing.ios_url.as_ref().map(|u| u.as_str().to_owned()),
            android_url: (link.routing.android_url.as_ref()).map(|u| u.as_str().to_owned()),
            forward_query: link.routing.forward_query,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateLink {
    #[schema(value_type = schema::CampaignId)]
    campaign_id: String,
    #[schema(value_type = schema::Url)]
    url: String,
    /// Without a phone the link redirects and counts clicks but emits no lead events.
    #[schema(value_type = Option<schema::Phone>)]
    phone: Option<String>,
    #[schema(value_type = Option<schema::ExternalLeadId>)]
    external_lead_id: Option<String>,
    /// A custom code; generated when absent.
    #[schema(value_type = Option<schema::ShortCode>)]
    code: Option<String>,
    /// The link answers `410` from then on.
    #[schema(value_type = Option<schema::Time>)]
    expires_at: Option<String>,
    /// Where clicks from iPhones and iPads go instead of `url` (an App Store or deep
    /// link); validated like `url`.
    #[schema(value_type = Option<schema::Url>)]
    ios_url: Option<String>,
    /// Where clicks from Android devices go instead of `url`.
    #[schema(value_type = Option<schema::Url>)]
    android_url: Option<String>,
    /// Append the short URL's query parameters to the destination's own. Default `false`.
    forward_query: Option<bool>,
}

/// Device destinations and query forwarding, as creation takes them.
fn routing(
    ios_url: Option<&str>,
    android_url: Option<&str>,
    forward_query: Option<bool>,
) -> Result<Routing, InvalidValue> {
    Ok(Routing {
        ios_url: device_url("iosUrl", ios_url)?,
        android_url: device_url("androidUrl", android_url)?,
        forward_query: forward_query.unwrap_or(false),
    })
}

fn device_url(field: &'static str, url: Option<&str>) -> Result<Option<Destination>, InvalidValue> {
    url.map(|u| Destination::parse_field(field, u)).transpose()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkLead {
    #[schema(value_type = schema::Phone)]
    phone: String,
    #[schema(value_type = Option<schema::ExternalLeadId>)]
    external_lead_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateLinksBulk {
    #[schema(value_type = schema::CampaignId)]
    campaign_id: String,
    #[schema(value_type = schema::Url)]
    url: String,
    /// Where clicks from iPhones and iPads go instead of `url` (an App Store or deep
    /// link); validated like `url`.
    #[schema(value_type = Option<schema::Url>)]
    ios_url: Option<String>,
    /// Where clicks from Android devices go instead of `url`.
    #[schema(value_type = Option<schema::Url>)]
    android_url: Option<String>,
    /// Append the short URL's query parameters to the destination's own. Default `false`.
    forward_query: Option<bool>,
    /// Up to 10,000 leads; links come back in the same order.
    #[schema(max_items = 10000)]
    leads: Vec<BulkLead>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkList {
    links: Vec<LinkBody>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkPageBody {
    links: Vec<LinkBody>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchLink {
    #[schema(value_type = Option<schema::Url>)]
    url: Option<String>,
    disabled: Option<bool>,
    /// `null` removes the expiry.
    #[serde(default, deserialize_with = "crate::http::extract::present")]
    #[schema(value_type = Option<schema::Time>)]
    expires_at: Option<Option<String>>,
    /// `null` removes the iOS destination.
    #[serde(default, deserialize_with = "crate::http::extract::present")]
    #[schema(value_type = Option<schema::Url>)]
    ios_url: Option<Option<String>>,
    /// `null` removes the Android destination.
    #[serde(default, deserialize_with = "crate::http::extract::present")]
    #[schema(value_type = Option<schema::Url>)]
    android_url: Option<Option<String>>,
    forward_query: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    #[param(value_type = Option<schema::CampaignId>)]
    campaign_id: Option<String>,
    /// A leading space is read as `+` (an unencoded `+` in a query string).
    #[param(value_type = Option<schema::Phone>)]
    phone: Option<String>,
    /// The `nextCursor` of the page before.
    #[param(value_type = Option<String>, pattern = r"^[0-9]{13}:[A-Za-z0-9_-]{1,64}$")]
    cursor: Option<String>,
    /// Default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

pub(super) fn parse_time(field: &'static str, s: &str) -> Result<DateTime<Utc>, InvalidValue> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| from_millis(t.with_timezone(&Utc).timestamp_millis()))
        .map_err(|_| InvalidValue::new(field, "must be an RFC 3339 timestamp"))
}

impl CreateLink {
    fn validate(self) -> Result<NewLink, InvalidValue> {
        Ok(NewLink {
            campaign_id: CampaignId::parse(&self.campaign_id)?,
            url: Destination::parse(&self.url)?,
            phone: self.phone.as_deref().map(Phone::parse).transpose()?,
            external_lead_id: self
                .external_lead_id
                .as_deref()
                .map(ExternalLeadId::parse)
                .transpose()?,
            code: self.code.as_deref().map(ShortCode::parse).transpose()?,
            expires_at: self
                .expires_at
                .as_deref()
                .map(|t| parse_time("expiresAt", t))
                .transpose()?,
            routing: routing(
                self.ios_url.as_deref(),
                self.android_url.as_deref(),
                self.forward_query,
            )?,
        })
    }
}

impl CreateLinksBulk {
    fn validate(self) -> Result<Vec<NewLink>, ApiError> {
        if self.leads.len() > MAX_BULK_LEADS {
            return Err(ApiError::invalid(
                "leads",
                format!(
                    "must hold at most {MAX_BULK_LEADS} leads, got {}",
                    self.leads.len()
                ),
            ));
        }
        let campaign_id = CampaignId::parse(&self.campaign_id)?;
        let url = Destination::parse(&self.url)?;
        let routing = routing(
            self.ios_url.as_deref(),
            self.android_url.as_deref(),
            self.forward_query,
        )?;
        self.leads
            .into_iter()
            .enumerate()
            .map(|(i, lead)| {
                let at = |e: InvalidValue| {
                    ApiError::invalid(&format!("leads[{i}].{}", e.field), e.message)
                };
                Ok(NewLink {
                    campaign_id: campaign_id.clone(),
                    url: url.clone(),
                    phone: Some(Phone::parse(&lead.phone).map_err(at)?),
                    external_lead_id: lead
                        .external_lead_id
                        .as_deref()
                        .map(ExternalLeadId::parse)
                        .transpose()
                        .map_err(at)?,
                    code: None,
                    expires_at: None,
                    routing: routing.clone(),
                })
            })
            .collect()
    }
}

impl PatchLink {
    fn validate(self) -> Result<LinkPatch, InvalidValue> {
        Ok(LinkPatch {
            at: now_millis(),
            url: self.url.as_deref().map(Destination::parse).transpose()?,
            disabled: self.disabled,
            expires_at: self
                .expires_at
                .map(|t| t.as_deref().map(|t| parse_time("expiresAt", t)).transpose())
                .transpose()?,
            ios_url: (self.ios_url)
                .map(|u| device_url("iosUrl", u.as_deref()))
                .transpose()?,
            android_url: (self.android_url)
                .map(|u| device_url("androidUrl", u.as_deref()))
                .transpose()?,
            forward_query: self.forward_query,
        })
    }
}

impl ListParams {
    fn validate(self) -> Result<LinkQuery, ApiError> {
        let limit = page_limit(self.limit.as_deref())?;
        let phone = self.phone.map(|p| match p.strip_prefix(' ') {
            Some(rest) => format!("+{rest}"),
            None => p,
        });
        Ok(LinkQuery {
            campaign_id: self
                .campaign_id
                .as_deref()
                .map(CampaignId::parse)
                .transpose()?,
            phone: phone.as_deref().map(Phone::parse).transpose()?,
            after: cursor(self.cursor.as_deref())?.unwrap_or_else(Position::start),
            limit,
        })
    }
}

/// A code in a path that cannot exist is simply not found.
fn path_code(code: &str) -> Result<ShortCode, ApiError> {
    ShortCode::parse(code).map_err(|_| ApiError::NotFound("link"))
}

/// Create a link, or return the existing one with the same campaign, phone and URL.
#[utoipa::path(post, path = "/v1/links", tag = "links", request_body = CreateLink,
    responses(
        (status = 201, description = "Created", body = LinkBody),
        (status = 200, description = "A link with this campaignId, phone and url already existed", body = LinkBody),
        (status = 409, description = "The custom code is taken, or this identity has another code"),
        (status = 422, description = "Invalid field"),
    ))]
async fn create_link(
    State(state): State<AppState>,
    Json(body): Json<CreateLink>,
) -> Result<Response, ApiError> {
    let new = body.validate()?;
    let created = (state.links.create(vec![new]).await?)
        .pop()
        .ok_or_else(|| ApiError::Internal("the store returned no link".into()))?;
    let status = if created.is_new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(LinkBody::new(&state, &created.link))).into_response())
}

/// Create one link per lead for a campaign URL, in the order given (idempotent per lead).
#[utoipa::path(post, path = "/v1/links/bulk", tag = "links", request_body = CreateLinksBulk,
    responses(
        (status = 200, description = "The links, in the order of `leads`", body = LinkList),
        (status = 422, description = "Invalid field, or more than 10,000 leads"),
    ))]
async fn create_links_bulk(
    State(state): State<AppState>,
    Json(body): Json<CreateLinksBulk>,
) -> Result<Response, ApiError> {
    let links = body.validate()?;
    let created = state.links.create(links).await?;
    let list = LinkList {
        links: created
            .iter()
            .map(|c| LinkBody::new(&state, &c.link))
            .collect(),
    };
    // Sized up front: 10,000 links are megabytes, which axum's Json would reach by doubling.
    let mut json = Vec::with_capacity(64 + list.links.len() * 320);
    serde_json::to_writer(&mut json, &list).map_err(|e| ApiError::Internal(Box::new(e)))?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json,
    )
        .into_response())
}

#[utoipa::path(get, path = "/v1/links/{code}", tag = "links",
    params(("code" = schema::ShortCode, Path, description = "Short code")),
    responses((status = 200, body = LinkBody), (status = 404, description = "No such link")))]
async fn get_link(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<axum::Json<LinkBody>, ApiError> {
    let code = path_code(&code)?;
    let link = (state.links.get(&code).await?).ok_or(ApiError::NotFound("link"))?;
    Ok(axum::Json(LinkBody::new(&state, &link)))
}

/// Change the destination, disable or re-enable, or set or clear the expiry. Takes effect
/// on every instance within a second.
#[utoipa::path(patch, path = "/v1/links/{code}", tag = "links", request_body = PatchLink,
    params(("code" = schema::ShortCode, Path, description = "Short code")),
    responses(
        (status = 200, body = LinkBody),
        (status = 404, description = "No such link"),
        (status = 409, description = "Another link already has the new campaign, phone and url"),
    ))]
async fn patch_link(
    State(state): State<AppState>,
    Path(code): Path<String>,
    Json(body): Json<PatchLink>,
) -> Result<axum::Json<LinkBody>, ApiError> {
    let code = path_code(&code)?;
    let patch = body.validate()?;
    let link = (state.links.patch(&code, &patch).await?).ok_or(ApiError::NotFound("link"))?;
    Ok(axum::Json(LinkBody::new(&state, &link)))
}

#[utoipa::path(delete, path = "/v1/links/{code}", tag = "links",
    params(("code" = schema::ShortCode, Path, description = "Short code")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such link")))]
async fn delete_link(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<StatusCode, ApiError> {
    let code = path_code(&code)?;
    if !state.links.delete(&code).await? {
        return Err(ApiError::NotFound("link"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// List links, oldest first, optionally of one campaign and/or one lead.
#[utoipa::path(get, path = "/v1/links", tag = "links", params(ListParams),
    responses((status = 200, body = LinkPageBody), (status = 422, description = "Invalid parameter")))]
async fn list_links(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<LinkPageBody>, ApiError> {
    let query = params.validate()?;
    let page = state.links.list(&query).await?;
    Ok(axum::Json(LinkPageBody {
        links: page
            .items
            .iter()
            .map(|l| LinkBody::new(&state, l))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}
