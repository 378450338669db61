//! Extractors that answer bad input in the API's own error shape.

use super::error::ApiError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
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

/// `axum::extract::Path`, with rejections as [`ApiError`]: a path segment that cannot be
/// decoded (invalid UTF-8) cannot name anything, so it is a `404`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(_: PathRejection) -> Self {
        ApiError::NotFound("resource")
    }
}

/// For `Option<Option<T>>` fields with `#[serde(default, deserialize_with = "present")]`:
/// tells a field sent as `null` (`Some(None)`) from a field left out (`None`).
pub fn present<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(de).map(Some)
}

/// The `limit` of a list: 1 to 1000, 50 when absent.
pub fn page_limit(limit: Option<&str>) -> Result<usize, ApiError> {
    const DEFAULT_PAGE: usize = 50;
    const MAX_PAGE: usize = 1000;
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| ApiError::invalid("limit", "must be a number from 1 to 1000")),
    }
}
