//! `ApiError`: the one place that decides an error's status code and JSON body.
//!
//! Every admin error is `{"error": {"code": "snake_case", "message": "…"}}`. Client errors
//! say what was wrong with the request; server errors say only that something failed, and
//! their cause goes to the log (never to the client).

use crate::domain::InvalidValue;
use crate::store::StoreError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Invalid { code: String, message: String },
    #[error("{message}")]
    MalformedBody { status: StatusCode, message: String },
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("the code is already used by another link")]
    CodeTaken,
    #[error("another link already has this campaignId, phone and url")]
    LinkExists,
    #[error("a different message already has this messageId")]
    MessageExists,
    #[error("missing or invalid X-Twilio-Signature")]
    BadSignature,
    #[error("the store is unavailable; retry shortly")]
    Unavailable(#[source] StoreError),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// A validation failure of the field or parameter `field`.
    pub fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
        Self::Invalid {
            code: format!("invalid_{}", snake_case(field)),
            message: format!("{field} {message}"),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &str) {
        match self {
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Invalid { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            Self::MalformedBody { status, .. } => (
                *status,
                match *status {
                    StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
                    StatusCode::REQUEST_TIMEOUT => "body_timeout",
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
                    StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
                    _ => "malformed_json",
                },
            ),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::CodeTaken => (StatusCode::CONFLICT, "code_taken"),
            Self::LinkExists => (StatusCode::CONFLICT, "link_exists"),
            Self::MessageExists => (StatusCode::CONFLICT, "message_exists"),
            Self::BadSignature => (StatusCode::FORBIDDEN, "invalid_signature"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }
}

impl From<InvalidValue> for ApiError {
    fn from(e: InvalidValue) -> Self {
        Self::invalid(e.field, e.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::CodeTaken => Self::CodeTaken,
            StoreError::IdentityTaken => Self::LinkExists,
            StoreError::Unavailable(_) => Self::Unavailable(e),
            StoreError::Corrupt(_) | StoreError::Bug(_) => Self::Internal(Box::new(e)),
        }
    }
}

/// `campaignId` → `campaign_id`; `leads[3].phone` → `phone`.
fn snake_case(field: &str) -> String {
    let name = field.rsplit('.').next().unwrap_or(field);
    let name = name.split('[').next().unwrap_or(name);
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Every error the admin API answers.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ErrorDetail {
    /// What went wrong, for programs: `invalid_phone`, `not_found`, `malformed_json`…
    #[schema(example = "invalid_phone")]
    code: String,
    /// What went wrong, for people: which field or parameter, and why.
    #[schema(example = "phone must be E.164: '+' then 2 to 15 digits, not starting with 0")]
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            // The whole cause chain goes to the log; the client gets the summary only.
            let mut chain = String::new();
            let mut source = std::error::Error::source(&self);
            while let Some(cause) = source {
                chain.push_str(": ");
                chain.push_str(&cause.to_string());
                source = cause.source();
            }
            tracing::error!(status = status.as_u16(), "{self}{chain}");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message: self.to_string(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if matches!(self, Self::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_become_snake_case_codes() {
        assert_eq!(snake_case("campaignId"), "campaign_id");
        assert_eq!(snake_case("leads[12].externalLeadId"), "external_lead_id");
        assert_eq!(snake_case("url"), "url");
    }
}
