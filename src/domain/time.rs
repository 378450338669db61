//! Time as both stores keep it and the API shows it: milliseconds since the Unix epoch.

use chrono::{DateTime, Utc};

/// Now, to the millisecond: the precision of every timestamp stored and shown.
pub fn now_millis() -> DateTime<Utc> {
    from_millis(Utc::now().timestamp_millis())
}

/// A stored time. Out of chrono's range (±262,000 years) only if the store was written by
/// someone else; then the epoch.
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// RFC 3339 in UTC with exactly three fractional digits and a `Z`
/// (`2024-01-28T12:00:05.000Z`).
pub fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
