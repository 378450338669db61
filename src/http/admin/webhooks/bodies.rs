//! The bodies and parameters of `/v1/webhooks`, and their validation.

use crate::domain::{
    Attempt, CampaignId, DeliveryRecord, DeliveryStatus, Destination, EventType, Subscription,
    SubscriptionFilter, format_time,
};
use crate::http::error::ApiError;
use crate::http::extract::page_limit;
use crate::http::schema;
use crate::service::{NewSubscription, SubscriptionChange};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

const MAX_DESCRIPTION: usize = 1024;

/// A subscription. `eventTypes` and `campaignIds` are `null` when it takes them all.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookBody {
    #[schema(example = "sub_3kJx9QaZb2Lm")]
    id: String,
    url: String,
    event_types: Option<Vec<String>>,
    campaign_ids: Option<Vec<String>>,
    description: Option<String>,
    /// `whsec_` + base64 of the signing key (Standard Webhooks).
    secret: String,
    created_at: String,
    /// True after a subscriber answered 410, or when disabled by PATCH.
    disabled: bool,
    /// Deliveries per second at most, over all instances; `null`: no limit.
    rate_limit: Option<u32>,
}

impl From<&Subscription> for WebhookBody {
    fn from(s: &Subscription) -> Self {
        Self {
            id: s.id.to_string(),
            url: s.url.clone(),
            event_types: s
                .filter
                .event_types
                .as_ref()
                .map(|t| t.iter().map(|t| t.as_str().to_owned()).collect()),
            campaign_ids: s
                .filter
                .campaign_ids
                .as_ref()
                .map(|c| c.iter().map(|c| c.as_str().to_owned()).collect()),
            description: s.description.clone(),
            secret: s.secret.clone(),
            created_at: format_time(&s.created_at),
            disabled: s.disabled,
            rate_limit: s.rate_limit,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWebhook {
    #[schema(value_type = schema::WebhookUrl)]
    url: String,
    /// Leave out (or `null`) for every event type.
    #[schema(value_type = Option<Vec<schema::EventType>>, min_items = 1)]
    event_types: Option<Vec<String>>,
    /// Leave out (or `null`) for every campaign.
    #[schema(value_type = Option<Vec<schema::CampaignId>>, min_items = 1, max_items = 1000)]
    campaign_ids: Option<Vec<String>>,
    #[schema(max_length = 1024)]
    description: Option<String>,
    /// Deliveries per second at most (1 to 10,000), over all instances; what waits for
    /// it stays pending and uses no attempt. Leave out (or `null`) for no limit.
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 10000)]
    rate_limit: Option<serde_json::Number>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchWebhook {
    #[schema(value_type = Option<schema::WebhookUrl>)]
    url: Option<String>,
    /// `null` for every event type.
    #[serde(default, deserialize_with = "crate::http::extract::present")]
    #[schema(value_type = Option<Vec<schema::EventType>>, min_items = 1)]
    event_types: Option<Option<Vec<String>>>,
    /// `null` for every campaign.
    #[serde(default, deserialize_with = "crate::http::extract::present")]
    #[schema(value_type = Option<Vec<schema::CampaignId>>, min_items = 1, max_items = 1000)]
    campaign_ids: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "crate::http::extract::present")]
    #[schema(value_type = Option<String>, max_length = 1024)]
    description: Option<Option<String>>,
    /// `false` re-enables a subscription disabled by a 410.
    disabled: Option<bool>,
    /// `null` removes the limit; effective within a second.
    #[serde(default, deserialize_with = "crate::http::extract::present")]
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 10000)]
    rate_limit: Option<Option<serde_json::Number>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPage {
    pub(super) webhooks: Vec<WebhookBody>,
    pub(super) next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryBody {
    event_id: String,
    event_type: String,
    /// `pending`, `delivered` or `failed`.
    status: String,
    attempts: Vec<AttemptBody>,
    /// When the next attempt is due; `null` unless pending.
    next_attempt_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptBody {
    at: String,
    status_code: Option<u16>,
    error: Option<String>,
    duration_ms: u64,
}

impl From<&DeliveryRecord> for DeliveryBody {
    fn from(r: &DeliveryRecord) -> Self {
        Self {
            event_id: r.event_id.to_string(),
            event_type: r.event_type.as_str().to_owned(),
            status: r.status.as_str().to_owned(),
            attempts: r
                .attempts
                .iter()
                .map(|a: &Attempt| AttemptBody {
                    at: format_time(&a.at),
                    status_code: a.status_code,
                    error: a.error.clone(),
                    duration_ms: a.duration_ms,
                })
                .collect(),
            next_attempt_at: r.next_attempt_at.as_ref().map(format_time),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryPage {
    pub(super) deliveries: Vec<DeliveryBody>,
    pub(super) next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// The `nextCursor` of the page before.
    #[param(value_type = Option<String>, pattern = r"^[0-9]{13}:[A-Za-z0-9_-]{1,64}$")]
    pub(super) cursor: Option<String>,
    /// Default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub(super) limit: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    #[param(value_type = Option<DeliveryStatusName>, inline)]
    pub(super) status: Option<String>,
    /// The `nextCursor` of the page before.
    #[param(value_type = Option<String>, pattern = r"^[0-9]{13}:[A-Za-z0-9_-]{1,64}$")]
    pub(super) cursor: Option<String>,
    /// Default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub(super) limit: Option<String>,
}

/// A delivery's state.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum DeliveryStatusName {
    Pending,
    Delivered,
    Failed,
}

fn event_types(types: Vec<String>) -> Result<Vec<EventType>, ApiError> {
    if types.is_empty() {
        return Err(ApiError::invalid(
            "eventTypes",
            "must list at least one type, or be left out for all",
        ));
    }
    types
        .iter()
        .map(|t| {
            EventType::parse(t).ok_or_else(|| {
                ApiError::invalid(
                    "eventTypes",
                    format!("has an unknown type {t:?}; known: lead.link_sent, lead.link_delivered, lead.link_clicked"),
                )
            })
        })
        .collect()
}

/// Most campaigns one subscription may name.
const MAX_CAMPAIGNS: usize = 1000;

fn campaign_ids(ids: Vec<String>) -> Result<Vec<CampaignId>, ApiError> {
    if ids.is_empty() || ids.len() > MAX_CAMPAIGNS {
        return Err(ApiError::invalid(
            "campaignIds",
            "must list 1 to 1000 campaigns, or be left out for all",
        ));
    }
    ids.iter()
        .map(|c| CampaignId::parse(c).map_err(|e| ApiError::invalid("campaignIds", e.message)))
        .collect()
}

/// The highest `rateLimit`, deliveries per second.
const MAX_RATE_LIMIT: u64 = 10_000;

/// A whole number of deliveries a second; JSON has one kind of number, so `50.0` is 50.
fn rate_limit(limit: serde_json::Number) -> Result<u32, ApiError> {
    let whole = limit.as_f64().filter(|l| l.fract() == 0.0);
    match whole {
        Some(l) if (1.0..=MAX_RATE_LIMIT as f64).contains(&l) => Ok(l as u32),
        _ => Err(ApiError::invalid(
            "rateLimit",
            "must be a whole number from 1 to 10000 deliveries a second, or null for no limit",
        )),
    }
}

fn description(d: String) -> Result<String, ApiError> {
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::invalid(
            "description",
            "must be at most 1024 characters",
        ));
    }
    Ok(d)
}

impl CreateWebhook {
    pub(super) fn validate(self) -> Result<NewSubscription, ApiError> {
        Ok(NewSubscription {
            url: Destination::parse(&self.url)?,
            filter: SubscriptionFilter {
                event_types: self.event_types.map(event_types).transpose()?,
                campaign_ids: self.campaign_ids.map(campaign_ids).transpose()?,
            },
            description: self.description.map(description).transpose()?,
            rate_limit: self.rate_limit.map(rate_limit).transpose()?,
        })
    }
}

impl PatchWebhook {
    pub(super) fn validate(self) -> Result<SubscriptionChange, ApiError> {
        Ok(SubscriptionChange {
            url: self.url.as_deref().map(Destination::parse).transpose()?,
            event_types: self
                .event_types
                .map(|t| t.map(event_types).transpose())
                .transpose()?,
            campaign_ids: self
                .campaign_ids
                .map(|c| c.map(campaign_ids).transpose())
                .transpose()?,
            description: self
                .description
                .map(|d| d.map(description).transpose())
                .transpose()?,
            disabled: self.disabled,
            rate_limit: (self.rate_limit)
                .map(|l| l.map(rate_limit).transpose())
                .transpose()?,
        })
    }
}

impl DeliveryParams {
    pub(super) fn status(&self) -> Result<Option<DeliveryStatus>, ApiError> {
        (self.status.as_deref())
            .map(|s| {
                DeliveryStatus::parse(s).ok_or_else(|| {
                    ApiError::invalid("status", "must be pending, delivered or failed")
                })
            })
            .transpose()
    }

    pub(super) fn limit(&self) -> Result<usize, ApiError> {
        page_limit(self.limit.as_deref())
    }
}
