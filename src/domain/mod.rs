//! Validated domain types.
//!
//! Every value that crosses the HTTP boundary is parsed into one of these types once, at
//! the edge; the rest of the crate never re-checks them. Each type's `parse` is the single
//! place where its rule lives, and its error message is what the API shows the client.

mod ids;
mod link;
mod phone;
mod url;

pub use ids::{CampaignId, ExternalLeadId, ShortCode, random_bytes, random_id};
pub use link::{Gone, Link, LinkPatch, NewLink};
pub use phone::Phone;
pub use url::Destination;

/// Why a value was refused. `field` names the offending input, `message` says what the
/// rule is; both are safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidValue {
    pub field: &'static str,
    pub message: String,
}

impl InvalidValue {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Milliseconds since the Unix epoch: how both stores keep timestamps, and the precision of
/// every timestamp the API shows (`2024-01-28T12:00:05.000Z`).
pub fn now_millis() -> chrono::DateTime<chrono::Utc> {
    from_millis(chrono::Utc::now().timestamp_millis())
}

pub fn from_millis(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// RFC 3339 in UTC with exactly three fractional digits and a `Z`.
pub fn format_time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
