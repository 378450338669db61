//! The counters of a link or a campaign.

use chrono::{DateTime, Utc};

/// Counters of a link or a campaign.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Human clicks.
    pub clicks: u64,
    /// `lead.link_clicked` events emitted.
    pub click_events: u64,
    pub bot_clicks: u64,
    pub last_clicked_at: Option<DateTime<Utc>>,
    pub messages_sent: u64,
    pub messages_delivered: u64,
}
