//! `/v1/webhooks`: subscriptions, their secrets and their delivery logs.

use super::super::AppState;
use super::super::error::ApiError;
use super::super::extract::{Json, Path, Query, page_limit};
use super::super::schema;
use crate::dispatch::{signing, ssrf};
use crate::domain::{CampaignId, Destination, format_time, now_millis, random_id};
use crate::events::EventType;
use crate::store::{Attempt, DeliveryRecord, DeliveryStatus, Subscription, SubscriptionPatch};
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

const MAX_DESCRIPTION: usize = 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(get_webhook, patch_webhook, delete_webhook))
        .routes(routes!(rotate_secret))
        .routes(routes!(list_deliveries))
        .routes(routes!(retry_delivery))
}

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
}

impl From<&Subscription> for WebhookBody {
    fn from(s: &Subscription) -> Self {
        Self {
            id: s.id.clone(),
            url: s.url.clone(),
            event_types: s
                .event_types
                .as_ref()
                .map(|t| t.iter().map(|t| t.as_str().to_owned()).collect()),
            campaign_ids: s
                .campaign_ids
                .as_ref()
                .map(|c| c.iter().map(|c| c.as_str().to_owned()).collect()),
            description: s.description.clone(),
            secret: s.secret.clone(),
            created_at: format_time(&s.created_at),
            disabled: s.disabled,
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
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchWebhook {
    #[schema(value_type = Option<schema::WebhookUrl>)]
    url: Option<String>,
    /// `null` for every event type.
    #[serde(default, deserialize_with = "super::super::extract::present")]
    #[schema(value_type = Option<Vec<schema::EventType>>, min_items = 1)]
    event_types: Option<Option<Vec<String>>>,
    /// `null` for every campaign.
    #[serde(default, deserialize_with = "super::super::extract::present")]
    #[schema(value_type = Option<Vec<schema::CampaignId>>, min_items = 1, max_items = 1000)]
    campaign_ids: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "super::super::extract::present")]
    #[schema(value_type = Option<String>, max_length = 1024)]
    description: Option<Option<String>>,
    /// `false` re-enables a subscription disabled by a 410.
    disabled: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPage {
    webhooks: Vec<WebhookBody>,
    next_cursor: Option<String>,
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
            event_id: r.event_id.clone(),
            event_type: r.event_type.as_str().to_owned(),
            status: r.status.as_str().to_owned(),
            attempts: r
                .attempts
                .iter()
                .map(|a: &Attempt| AttemptBody {
                    at: a.at.clone(),
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
    deliveries: Vec<DeliveryBody>,
    next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// The `nextCursor` of the page before.
    #[param(value_type = Option<String>, pattern = r"^[0-9]{13}:[A-Za-z0-9_-]{1,64}$")]
    cursor: Option<String>,
    /// Default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    #[param(value_type = Option<DeliveryStatusName>, inline)]
    status: Option<String>,
    /// The `nextCursor` of the page before.
    #[param(value_type = Option<String>, pattern = r"^[0-9]{13}:[A-Za-z0-9_-]{1,64}$")]
    cursor: Option<String>,
    /// Default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
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

/// A target the dispatcher may post to: an http(s) URL like a link's destination, and,
/// unless private targets are allowed, not an address inside our network.
async fn target(state: &AppState, url: &str) -> Result<String, ApiError> {
    let url = Destination::parse(url)?;
    let parsed =
        url::Url::parse(url.as_str()).map_err(|_| ApiError::invalid("url", "is not a URL"))?;
    if parsed.port() == Some(0) {
        return Err(ApiError::invalid("url", "must not use port 0"));
    }
    if !state.config.webhook_allow_private {
        ssrf::check_target(&parsed)
            .await
            .map_err(|e| ApiError::invalid("url", format!("is refused: {e}")))?;
    }
    Ok(url.as_str().to_owned())
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

fn description(d: String) -> Result<String, ApiError> {
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::invalid(
            "description",
            "must be at most 1024 characters",
        ));
    }
    Ok(d)
}

/// Applies `patch` and answers with the subscription.
async fn update(
    state: &AppState,
    id: &str,
    patch: &SubscriptionPatch,
) -> Result<axum::Json<WebhookBody>, ApiError> {
    let sub = state
        .store
        .update_subscription(id, patch)
        .await?
        .ok_or(ApiError::NotFound("webhook"))?;
    Ok(axum::Json(WebhookBody::from(&sub)))
}

async fn find(state: &AppState, id: &str) -> Result<Subscription, ApiError> {
    state
        .store
        .get_subscription(id)
        .await?
        .ok_or(ApiError::NotFound("webhook"))
}

/// Subscribe a URL to events. The response carries the signing secret.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 201, body = WebhookBody), (status = 422, description = "Invalid field")))]
async fn create_webhook(
    State(state): State<AppState>,
    Json(body): Json<CreateWebhook>,
) -> Result<(StatusCode, axum::Json<WebhookBody>), ApiError> {
    let sub = Subscription {
        id: random_id("sub_", 20),
        url: target(&state, &body.url).await?,
        event_types: body.event_types.map(event_types).transpose()?,
        campaign_ids: body.campaign_ids.map(campaign_ids).transpose()?,
        description: body.description.map(description).transpose()?,
        secret: signing::new_secret(),
        created_at: now_millis(),
        disabled: false,
    };
    state.store.create_subscription(&sub).await?;
    Ok((StatusCode::CREATED, axum::Json(WebhookBody::from(&sub))))
}

/// Subscriptions, oldest first.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", params(PageParams),
    responses((status = 200, body = WebhookPage)))]
async fn list_webhooks(
    State(state): State<AppState>,
    Query(params): Query<PageParams>,
) -> Result<axum::Json<WebhookPage>, ApiError> {
    let limit = page_limit(params.limit.as_deref())?;
    let cursor = params.cursor;
    let page = state
        .store
        .list_subscriptions(cursor.as_deref(), limit)
        .await?;
    Ok(axum::Json(WebhookPage {
        webhooks: page.items.iter().map(WebhookBody::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id")),
    responses((status = 200, body = WebhookBody), (status = 404, description = "No such webhook")))]
async fn get_webhook(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<WebhookBody>, ApiError> {
    Ok(axum::Json(WebhookBody::from(&find(&state, &id).await?)))
}

#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks", request_body = PatchWebhook,
    params(("id" = String, Path, description = "Subscription id")),
    responses((status = 200, body = WebhookBody), (status = 404, description = "No such webhook")))]
async fn patch_webhook(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<PatchWebhook>,
) -> Result<axum::Json<WebhookBody>, ApiError> {
    let patch = SubscriptionPatch {
        url: match body.url {
            Some(url) => Some(target(&state, &url).await?),
            None => None,
        },
        event_types: body
            .event_types
            .map(|t| t.map(event_types).transpose())
            .transpose()?,
        campaign_ids: body
            .campaign_ids
            .map(|c| c.map(campaign_ids).transpose())
            .transpose()?,
        description: body
            .description
            .map(|d| d.map(description).transpose())
            .transpose()?,
        disabled: body.disabled,
        secret: None,
    };
    update(&state, &id, &patch).await
}

#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such webhook")))]
async fn delete_webhook(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.store.delete_subscription(&id).await? {
        return Err(ApiError::NotFound("webhook"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Replace the signing secret; deliveries from now on are signed with the new one.
#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id")),
    responses((status = 200, body = WebhookBody), (status = 404, description = "No such webhook")))]
async fn rotate_secret(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<WebhookBody>, ApiError> {
    let patch = SubscriptionPatch {
        secret: Some(signing::new_secret()),
        ..Default::default()
    };
    update(&state, &id, &patch).await
}

/// The delivery log, newest first.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id"), DeliveryParams),
    responses((status = 200, body = DeliveryPage), (status = 404, description = "No such webhook")))]
async fn list_deliveries(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<DeliveryParams>,
) -> Result<axum::Json<DeliveryPage>, ApiError> {
    let limit = page_limit(params.limit.as_deref())?;
    let status = params
        .status
        .map(|s| {
            DeliveryStatus::parse(&s)
                .ok_or_else(|| ApiError::invalid("status", "must be pending, delivered or failed"))
        })
        .transpose()?;
    find(&state, &id).await?;
    let cursor = params.cursor;
    let page = state
        .store
        .list_deliveries(&id, status, cursor.as_deref(), limit)
        .await?;
    Ok(axum::Json(DeliveryPage {
        deliveries: page.items.iter().map(DeliveryBody::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Send one event to this subscription again, now (also after it failed for good).
#[utoipa::path(post, path = "/v1/webhooks/{id}/deliveries/{eventId}/retry", tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id"), ("eventId" = String, Path, description = "Event id")),
    responses((status = 202, description = "Queued"), (status = 404, description = "No such webhook or delivery")))]
async fn retry_delivery(
    State(state): State<AppState>,
    Path((id, event_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    find(&state, &id).await?;
    if !state.store.retry_delivery(&id, &event_id).await? {
        return Err(ApiError::NotFound("delivery"));
    }
    Ok(StatusCode::ACCEPTED)
}
