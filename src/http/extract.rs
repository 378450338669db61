//! Extractors that answer bad input in the API's own error shape.

use super::error::ApiError;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};

/// `axum::Json`, but a malformed, oversized or mistyped body is an [`ApiError`].
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        // axum's messages name the position and field at fault and nothing internal.
        ApiError::MalformedBody {
            status: rejection.status(),
            message: rejection.body_text(),
        }
    }
}

/// `axum::extract::Query`, with rejections as [`ApiError`].
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::Invalid {
            code: "invalid_query".into(),
            message: rejection.body_text(),
        }
    }
}
