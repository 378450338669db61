//! `/v1/messages`: put the lead's short links into an SMS body, and take the sender's
//! status reports.

use crate::domain::{
    CampaignId, ExternalLeadId, InvalidValue, MAX_BODY_CHARS, Message, MessageId, MessageStatus,
    Phone, from_millis,
};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path};
use crate::http::schema;
use crate::service::{Compose, NewMessage};
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
    let new = request.validate()?;
    match state.messages.create(new).await? {
        Compose::Created(message) => {
            Ok((StatusCode::CREATED, axum::Json(MessageBody::from(&message))))
        }
        Compose::Existing(message) => Ok((StatusCode::OK, axum::Json(MessageBody::from(&message)))),
        Compose::Conflict => Err(ApiError::MessageExists),
    }
}

impl CreateMessage {
    fn validate(self) -> Result<NewMessage, InvalidValue> {
        if self.body.is_empty() || self.body.chars().count() > MAX_BODY_CHARS {
            return Err(InvalidValue::new(
                "body",
                format!("must be 1 to {MAX_BODY_CHARS} characters"),
            ));
        }
        Ok(NewMessage {
            campaign_id: CampaignId::parse(&self.campaign_id)?,
            phone: Phone::parse(&self.phone)?,
            external_lead_id: self
                .external_lead_id
                .as_deref()
                .map(ExternalLeadId::parse)
                .transpose()?,
            id: self
                .message_id
                .as_deref()
                .map(MessageId::parse)
                .transpose()?,
            body: self.body,
        })
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
                .map(|t| from_millis(t.timestamp_millis()))
                .map_err(|_| ApiError::invalid("at", "must be an RFC 3339 timestamp"))
        })
        .transpose()?;
    let (recorded, events) = state.messages.report(&id, status, at).await?;
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
