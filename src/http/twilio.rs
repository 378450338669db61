//! `POST /callbacks/twilio/status`: Twilio's message status callback, so that Twilio users
//! need no code of their own. It acts as `POST /v1/messages/{MessageSid}/status`.
//!
//! Twilio signs each callback: `X-Twilio-Signature` is base64 of HMAC-SHA1, keyed by the
//! account's auth token, of the full URL Twilio called followed by every form parameter,
//! sorted by name, as name and value concatenated. The URL we check against is
//! `AKTI_BASE_URL` plus the path and query of the request, so the callback URL configured
//! in Twilio must be `{AKTI_BASE_URL}/callbacks/twilio/status`, optionally with
//! `?messageId=<our message id>`.

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::Body;
use crate::domain::{MessageId, MessageStatus};
use crate::store::StatusRecorded;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use subtle::ConstantTimeEq;

/// The signature Twilio computes for `url` and `params`.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(auth_token.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// What Twilio posts.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code)]
struct TwilioStatusForm {
    message_sid: Option<String>,
    #[schema(example = "delivered")]
    message_status: Option<String>,
}

/// Twilio's status callback: acts as `POST /v1/messages/{messageId}/status`.
#[utoipa::path(post, path = "/callbacks/twilio/status", tag = "public", security(()),
    description = "Twilio's message status callback, signed with the account's auth token. The \
        message is the one named by `?messageId=` if given, else the one whose id is the \
        `MessageSid`. Without `AKTI_TWILIO_AUTH_TOKEN` every callback is `403`.",
    params(
        ("messageId" = Option<super::schema::MessageId>, Query, description = "Our message id"),
        ("X-Twilio-Signature" = String, Header, description = "Twilio's signature of the URL and form"),
    ),
    request_body(content = TwilioStatusForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 204, description = "Recorded, or a status with nothing to do"),
        (status = 400, description = "The body could not be read"),
        (status = 403, description = "Missing or wrong signature", content_type = "application/json", body = ErrorBody),
        (status = 404, description = "No such message", content_type = "application/json", body = ErrorBody),
        (status = 408, description = "The body did not arrive in time"),
        (status = 413, description = "The body is over 64 KiB"),
        (status = 503, description = "The store is unavailable", content_type = "application/json", body = ErrorBody),
    ))]
pub async fn status_callback(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    // Without a token nothing can be verified, so nothing is accepted.
    let Some(token) = state.twilio_auth_token.as_deref() else {
        return Err(ApiError::BadSignature);
    };
    let params: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let presented = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::BadSignature)?;
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let expected = signature(
        token,
        &format!("{}{path}", state.short_urls.base()),
        &params,
    );
    if !bool::from(expected.as_bytes().ct_eq(presented.as_bytes())) {
        return Err(ApiError::BadSignature);
    }

    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    // Twilio's SID is only known after sending, while the body (with its short links) is
    // made before: so the callback URL may name our message id, `?messageId=…` (Twilio
    // signs the query too). Without it, the message is the one created with messageId =
    // MessageSid.
    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let ours = query
        .iter()
        .find(|(k, _)| k == "messageId")
        .map(|(_, v)| v.as_str());
    let sid = ours
        .or_else(|| param("MessageSid"))
        .or_else(|| param("SmsSid"))
        .unwrap_or_default();
    let id = MessageId::parse(sid).map_err(|_| ApiError::NotFound("message"))?;
    // Twilio also reports queued, sending, accepted, read…: nothing to do for those.
    let Some(status) = param("MessageStatus").and_then(MessageStatus::parse) else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let (recorded, _) = state.messages.report(&id, status, None).await?;
    if recorded == StatusRecorded::UnknownMessage {
        return Err(ApiError::NotFound("message"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of Twilio's webhook security documentation.
    #[test]
    fn matches_twilios_documented_example() {
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            signature(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }
}
