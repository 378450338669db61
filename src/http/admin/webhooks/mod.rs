//! `/v1/webhooks`: subscriptions, their secrets and their delivery logs.

mod bodies;

use crate::domain::{EventId, Position, SubscriptionId};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query, cursor, page_limit};
use crate::service::SubscribeError;
use axum::extract::State;
use axum::http::StatusCode;
use bodies::{
    CreateWebhook, DeliveryBody, DeliveryPage, DeliveryParams, PageParams, PatchWebhook,
    WebhookBody, WebhookPage,
};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(get_webhook, patch_webhook, delete_webhook))
        .routes(routes!(rotate_secret))
        .routes(routes!(list_deliveries))
        .routes(routes!(retry_delivery))
}

impl From<SubscribeError> for ApiError {
    fn from(e: SubscribeError) -> Self {
        match e {
            SubscribeError::Refused(why) => ApiError::invalid("url", why),
            SubscribeError::Store(e) => e.into(),
        }
    }
}

/// A subscription id in a path: one that cannot exist is simply not found.
fn path_id(id: &str) -> Result<SubscriptionId, ApiError> {
    SubscriptionId::parse(id).ok_or(ApiError::NotFound("webhook"))
}

fn found(sub: Option<crate::domain::Subscription>) -> Result<axum::Json<WebhookBody>, ApiError> {
    sub.map(|s| axum::Json(WebhookBody::from(&s)))
        .ok_or(ApiError::NotFound("webhook"))
}

/// Subscribe a URL to events. The response carries the signing secret.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 201, body = WebhookBody), (status = 422, description = "Invalid field")))]
async fn create_webhook(
    State(state): State<AppState>,
    Json(body): Json<CreateWebhook>,
) -> Result<(StatusCode, axum::Json<WebhookBody>), ApiError> {
    let sub = state.webhooks.subscribe(body.validate()?).await?;
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
    let after = cursor(params.cursor.as_deref())?.unwrap_or_else(Position::start);
    let page = state.webhooks.list(after, limit).await?;
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
    found(state.webhooks.get(&path_id(&id)?).await?)
}

#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks", request_body = PatchWebhook,
    params(("id" = String, Path, description = "Subscription id")),
    responses((status = 200, body = WebhookBody), (status = 404, description = "No such webhook")))]
async fn patch_webhook(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<PatchWebhook>,
) -> Result<axum::Json<WebhookBody>, ApiError> {
    let id = path_id(&id)?;
    found(state.webhooks.change(&id, body.validate()?).await?)
}

#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such webhook")))]
async fn delete_webhook(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.webhooks.delete(&path_id(&id)?).await? {
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
    found(state.webhooks.rotate_secret(&path_id(&id)?).await?)
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
    let (limit, status) = (params.limit()?, params.status()?);
    let before = cursor(params.cursor.as_deref())?;
    let page = (state
        .webhooks
        .deliveries(&path_id(&id)?, status, before, limit)
        .await?)
        .ok_or(ApiError::NotFound("webhook"))?;
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
    let id = path_id(&id)?;
    let event = EventId::parse(&event_id).ok_or(ApiError::NotFound("delivery"))?;
    match state.webhooks.retry(&id, &event).await? {
        None => Err(ApiError::NotFound("webhook")),
        Some(false) => Err(ApiError::NotFound("delivery")),
        Some(true) => Ok(StatusCode::ACCEPTED),
    }
}
