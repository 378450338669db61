//! The counters of a link or a campaign.

use chrono::{DateTime, Utc};

/// Counters of a link or a campaign.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Human clicks.
    pub clicks: u64,
    /// `lead.link_clicked` events emitted.
    pub click_events: u64,
    /// Links with a human click (a campaign's; a link has `first_clicked_at` instead).
    pub unique_clicks: u64,
    pub bot_clicks: u64,
    pub last_clicked_at: Option<DateTime<Utc>>,
    /// The first human click.
    pub first_clicked_at: Option<DateTime<Utc>>,
    /// When a message carrying the link was first reported delivered (links only).
    pub delivered_at: Option<DateTime<Utc>>,
    pub messages_sent: u64,
    pub messages_delivered: u64,
}

impl Stats {
    /// Adds the counters of another part of the same link or campaign (a store that keeps
    /// them in parts sums them when read).
    pub fn add(&mut self, other: &Stats) {
        self.clicks += other.clicks;
        self.click_events += other.click_events;
        self.unique_clicks += other.unique_clicks;
        self.bot_clicks += other.bot_clicks;
        self.messages_sent += other.messages_sent;
        self.messages_delivered += other.messages_delivered;
        self.last_clicked_at = self.last_clicked_at.max(other.last_clicked_at);
        self.first_clicked_at = earliest(self.first_clicked_at, other.first_clicked_at);
        self.delivered_at = earliest(self.delivered_at, other.delivered_at);
    }
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::from_millis;

    #[test]
    fn parts_add_up_the_latest_click_and_the_earliest_first_click_win() {
        let mut total = Stats {
            clicks: 1,
            last_clicked_at: Some(from_millis(5)),
            first_clicked_at: Some(from_millis(5)),
            ..Stats::default()
        };
        total.add(&Stats {
            clicks: 2,
            bot_clicks: 3,
            messages_sent: 4,
            last_clicked_at: Some(from_millis(9)),
            first_clicked_at: Some(from_millis(2)),
            ..Stats::default()
        });
        total.add(&Stats::default());
        assert_eq!(total.clicks, 3);
        assert_eq!(total.bot_clicks, 3);
        assert_eq!(total.messages_sent, 4);
        assert_eq!(total.last_clicked_at, Some(from_millis(9)));
        assert_eq!(total.first_clicked_at, Some(from_millis(2)));
        assert_eq!(total.delivered_at, None);
    }
}
