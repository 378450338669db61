//! `/v1/messages`: put the lead's short links into an SMS body, and take the sender's
//! status reports.

use super::super::AppState;
use super::super::error::ApiError;
use super::super::extract::{Json, Path};
use super::super::schema;
use crate::domain::{CampaignId, ExternalLeadId, InvalidValue, NewLink, Phone, now_millis};
use crate::messages::{self, MAX_BODY_CHARS, Message, MessageId, MessageLink, MessageStatus};
use crate::store::StatusRecorded;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_message))
        .routes(routes!(report_status))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateMessage {
    #[schema(value_type = schema::CampaignId)]
    campaign_id: String,
    #[schema(value_type = schema::Phone)]
    phone: String,
    #[schema(value_type = Option<schema::ExternalLeadId>)]
    external_lead_id: Option<String>,
    /// The SMS text.
    #[schema(
        min_length = 1,
        max_length = 1600,
        example = "Hi Ana, your offer: https://shop.example.com/deal"
    )]
    body: String,
    /// Your own id (e.g. your SMS provider's message id); generated when absent. Sending
    /// the same call again with it returns the same message.
    #[schema(value_type = Option<schema::MessageId>)]
    message_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageBody {
    message_id: String,
    /// The body to send: every URL replaced by the lead's short link.
    body: String,
    links: Vec<MessageLinkBody>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageLinkBody {
    url: String,
    short_url: String,
    code: String,
}

impl From<&Message> for MessageBody {
    fn from(m: &Message) -> Self {
        Self {
            message_id: m.id.as_str().to_owned(),
            body: m.body.clone(),
            links: m
                .links
                .iter()
                .map(|l| MessageLinkBody {
                    url: l.url.clone(),
                    short_url: l.short_url.clone(),
                    code: l.code.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportStatus {
    #[schema(value_type = MessageStatusName)]
    status: String,
    /// When it happened; the events' `eventTime`. Default: now.
    #[schema(value_type = Option<schema::Time>)]
    at: Option<String>,
}

/// What a sender reports.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum MessageStatusName {
    Sent,
    Delivered,
    Failed,
    Undelivered,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusBody {
    message_id: String,
    status: String,
    /// False when this status had been reported before (nothing was done again).
    first_report: bool,
    /// Events queued by this report.
    events: usize,
}

/// Rewrite an SMS body for one lead: each URL becomes the lead's short link.
#[utoipa::path(post, path = "/v1/messages", tag = "messages", request_body = CreateMessage,
    responses(
        (status = 201, body = MessageBody),
        (status = 200, description = "The same messageId and request again: the same message", body = MessageBody),
        (status = 409, description = "The messageId is taken by a different message"),
        (status = 422, description = "Invalid field"),
    ))]
async fn create_message(
    State(state): State<AppState>,
    Json(request): Json<CreateMessage>,
) -> Result<(StatusCode, axum::Json<MessageBody>), ApiError> {
    let campaign_id = CampaignId::parse(&request.campaign_id)?;
    let phone = Phone::parse(&request.phone)?;
    let external_lead_id = request
        .external_lead_id
        .as_deref()
        .map(ExternalLeadId::parse)
        .transpose()?;
    if request.body.is_empty() || request.body.chars().count() > MAX_BODY_CHARS {
        return Err(
            InvalidValue::new("body", format!("must be 1 to {MAX_BODY_CHARS} characters")).into(),
        );
    }
    let id = match request.message_id.as_deref() {
        Some(id) => MessageId::parse(id)?,
        None => MessageId::generate(),
    };
    if let Some(existing) = state.store.get_message(&id).await? {
        return same_or_conflict(
            existing,
            &campaign_id,
            &phone,
            &external_lead_id,
            &request.body,
        );
    }

    let found = messages::find_urls(&request.body, &state.config.base_url);
    let new_links = found
        .iter()
        .map(|f| NewLink {
            campaign_id: campaign_id.clone(),
            phone: Some(phone.clone()),
            external_lead_id: external_lead_id.clone(),
            url: f.destination.clone(),
            code: None,
            expires_at: None,
        })
        .collect();
    let created = state
        .store
        .create_links(new_links, state.config.code_length)
        .await?;
    let short: Vec<String> = created
        .iter()
        .map(|c| state.short_url(c.link.code.as_str()))
        .collect();
    let mut links: Vec<MessageLink> = Vec::new();
    for (c, short_url) in created.iter().zip(&short) {
        if !links.iter().any(|l| l.short_url == *short_url) {
            links.push(MessageLink {
                url: c.link.url.as_str().to_owned(),
                short_url: short_url.clone(),
                code: c.link.code.to_string(),
            });
        }
    }
    let now = now_millis();
    let ttl =
        chrono::Duration::from_std(state.config.message_ttl).unwrap_or(chrono::Duration::days(7));
    let message = Message {
        id,
        campaign_id: campaign_id.clone(),
        phone: phone.clone(),
        external_lead_id: external_lead_id.clone(),
        body: messages::rewrite(&request.body, &found, &short),
        original: request.body,
        links,
        created_at: now,
        expires_at: now + ttl,
    };
    match state.store.create_message(&message).await? {
        None => Ok((StatusCode::CREATED, axum::Json(MessageBody::from(&message)))),
        // A concurrent call with the same id got there first.
        Some(existing) => same_or_conflict(
            existing,
            &campaign_id,
            &phone,
            &external_lead_id,
            &message.original,
        ),
    }
}

fn same_or_conflict(
    existing: Message,
    campaign_id: &CampaignId,
    phone: &Phone,
    external_lead_id: &Option<ExternalLeadId>,
    original: &str,
) -> Result<(StatusCode, axum::Json<MessageBody>), ApiError> {
    let same = existing.campaign_id == *campaign_id
        && existing.phone == *phone
        && existing.external_lead_id == *external_lead_id
        && existing.original == original;
    if same {
        Ok((StatusCode::OK, axum::Json(MessageBody::from(&existing))))
    } else {
        Err(ApiError::MessageExists)
    }
}

/// Report that a message was sent, delivered, failed or undelivered. Each status acts
/// once; repeats and any order are fine.
#[utoipa::path(post, path = "/v1/messages/{messageId}/status", tag = "messages", request_body = ReportStatus,
    params(("messageId" = schema::MessageId, Path, description = "Message id")),
    responses(
        (status = 200, body = StatusBody),
        (status = 404, description = "No such message (or it expired)"),
        (status = 422, description = "Invalid status or time"),
    ))]
async fn report_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(request): Json<ReportStatus>,
) -> Result<axum::Json<StatusBody>, ApiError> {
    let id = MessageId::parse(&id).map_err(|_| ApiError::NotFound("message"))?;
    let status = MessageStatus::parse(&request.status).ok_or_else(|| {
        ApiError::invalid("status", "must be sent, delivered, failed or undelivered")
    })?;
    let at = request
        .at
        .as_deref()
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|t| crate::domain::from_millis(t.timestamp_millis()))
                .map_err(|_| ApiError::invalid("at", "must be an RFC 3339 timestamp"))
        })
        .transpose()?;
    let (recorded, events) = messages::report_status(state.store.as_ref(), &id, status, at).await?;
    if recorded == StatusRecorded::UnknownMessage {
        return Err(ApiError::NotFound("message"));
    }
    Ok(axum::Json(StatusBody {
        message_id: id.as_str().to_owned(),
        status: status.as_str().to_owned(),
        first_report: recorded == StatusRecorded::Recorded,
        events,
    }))
}
