//! The bodies and parameters of `/v1/links`, and their validation.

use crate::domain::{
    CampaignId, Destination, ExternalLeadId, InvalidValue, Link, LinkPatch, NewLink, Phone,
    Position, Routing, ShortCode, format_time, from_millis, now_millis,
};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{cursor, page_limit};
use crate::http::schema;
use crate::store::LinkQuery;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Most leads in one bulk call.
pub const MAX_BULK_LEADS: usize = 10_000;

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
    pub(super) fn new(state: &AppState, link: &Link) -> Self {
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
    pub(super) links: Vec<LinkBody>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkPageBody {
    pub(super) links: Vec<LinkBody>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub(super) next_cursor: Option<String>,
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

pub(in crate::http::admin) fn parse_time(
    field: &'static str,
    s: &str,
) -> Result<DateTime<Utc>, InvalidValue> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| from_millis(t.with_timezone(&Utc).timestamp_millis()))
        .map_err(|_| InvalidValue::new(field, "must be an RFC 3339 timestamp"))
}

impl CreateLink {
    pub(super) fn validate(self) -> Result<NewLink, InvalidValue> {
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
    pub(super) fn validate(self) -> Result<Vec<NewLink>, ApiError> {
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
    pub(super) fn validate(self) -> Result<LinkPatch, InvalidValue> {
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
    pub(super) fn validate(self) -> Result<LinkQuery, ApiError> {
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
