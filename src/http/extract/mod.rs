//! Extractors that read requests strictly and answer bad input in the API's own error
//! shape and words: a body must arrive within [`BODY_TIMEOUT`] and under the listener's
//! size limit, JSON must be well formed before its fields are looked at, and every error
//! names the field or parameter at fault (see [`strict`]).
//!
//! [`BODY_TIMEOUT`]: BodyTimeout

mod strict;

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use std::time::Duration;

/// How long a client has to send a request body once its head has arrived, when the
/// server did not say ([`BodyTimeout`]).
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// The body timeout of the listener a request came through, in its extensions.
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub Duration);

fn malformed(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError::MalformedBody {
        status,
        message: message.into(),
    }
}

/// The whole request body, read within the listener's [`BodyTimeout`] and body limit.
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let timeout = (request.extensions().get::<BodyTimeout>()).map_or(BODY_TIMEOUT, |t| t.0);
        let read = tokio::time::timeout(timeout, Bytes::from_request(request, state));
        match read.await {
            Ok(Ok(bytes)) => Ok(Self(bytes)),
            Ok(Err(rejection)) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(
                malformed(StatusCode::PAYLOAD_TOO_LARGE, "the body is too large"),
            ),
            Ok(Err(_)) => Err(malformed(
                StatusCode::BAD_REQUEST,
                "the body could not be read to its end",
            )),
            Err(_) => Err(malformed(
                StatusCode::REQUEST_TIMEOUT,
                format!("the body did not arrive within {} ms", timeout.as_millis()),
            )),
        }
    }
}

/// A JSON request body: `415` unless it is sent as JSON, `400` unless it is well-formed
/// JSON, `422` unless it has the request's fields and types (objects only where an object
/// is expected).
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(request.headers()) {
            return Err(malformed(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be JSON, sent with content-type: application/json",
            ));
        }
        let Body(bytes) = Body::from_request(request, state).await?;
        let value = strict::parse(&bytes).map_err(|m| malformed(StatusCode::BAD_REQUEST, m))?;
        strict::from_value(&value)
            .map(Json)
            .map_err(|e| malformed(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))
    }
}

/// `application/json`, or any `+json` type, parameters aside.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence
            .rsplit_once('+')
            .is_some_and(|(kind, suffix)| kind.contains('/') && suffix.eq_ignore_ascii_case("json"))
}

/// The query string into `T` (whose fields are all strings): `422 invalid_query` for an
/// unknown parameter, a parameter given twice, or a value that is not the right kind.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let invalid = |message: String| ApiError::Invalid {
            code: "invalid_query".into(),
            message,
        };
        let mut params = serde_json::Map::new();
        let query = parts.uri.query().unwrap_or_default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if params.contains_key(name.as_ref()) {
                return Err(invalid(format!("the parameter {name} is given twice")));
            }
            params.insert(
                name.into_owned(),
                serde_json::Value::String(value.into_owned()),
            );
        }
        let params = serde_json::Value::Object(params);
        strict::from_value(&params)
            .map(Query)
            .map_err(|e| invalid(e.to_string()))
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

/// The `cursor` of a list: where the page before ended.
pub fn cursor(cursor: Option<&str>) -> Result<Option<crate::domain::Position>, ApiError> {
    cursor
        .map(|c| {
            crate::domain::Position::parse(c)
                .ok_or_else(|| ApiError::invalid("cursor", "is not a cursor of this list"))
        })
        .transpose()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_application_json_or_a_json_suffix() {
        let with = |value: &str| {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            is_json(&headers)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/merge-patch+json"));
        assert!(!with("text/plain"));
        assert!(!with("application/x-www-form-urlencoded"));
        assert!(!with("json"));
        assert!(!is_json(&axum::http::HeaderMap::new()));
    }
}
