//! Clicks: a lead's click on its way to the store, and the counts of clicks nobody waits for.

use super::analytics::{BucketCounts, Os, Tier};
use super::{CampaignId, Event, ShortCode};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// A lead's human click: it opens the lead's dedup window and queues its event, unless a
/// window is already open. Either way it counts as a click.
#[derive(Debug, Clone)]
pub struct LeadClick {
    pub code: ShortCode,
    pub campaign_id: CampaignId,
    pub at: DateTime<Utc>,
    /// The clicker's system, for the campaign's analytics.
    pub os: Os,
    pub event: Event,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClickOutcome {
    /// A window (opened at that click time) was open: counted, no event.
    Deduplicated { window_opened_at: DateTime<Utc> },
    /// This click opened the window and its event is queued.
    Emitted,
}

impl ClickOutcome {
    /// When the window that the click at `at` fell in opened.
    pub fn window_opened_at(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::Deduplicated { window_opened_at } => *window_opened_at,
            Self::Emitted => at,
        }
    }
}

/// Clicks that only count (bots, previews, links without a lead, and lead clicks already
/// known to fall in an open window), summed per link and per campaign between writes.
#[derive(Debug, Clone, Default)]
pub struct ClickCounts {
    pub links: HashMap<ShortCode, LinkCount, ahash::RandomState>,
    pub campaigns: HashMap<CampaignId, CampaignCount, ahash::RandomState>,
}

/// A campaign's counts, and the same clicks by the minute they were made in (for its time
/// series; usually one or two minutes per interval).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignCount {
    pub count: Count,
    /// Minute starts (unix ms) and what was counted in them.
    pub minutes: Vec<(i64, BucketCounts)>,
}

impl CampaignCount {
    fn add(&mut self, counted: Counted, os: Os, at: i64) {
        self.count.add(counted, at);
        let minute = Tier::Minute.bucket_of(at);
        // Clicks come in roughly in time order: the minute is almost always the last one.
        let bucket = match self.minutes.iter().rposition(|(m, _)| *m == minute) {
            Some(i) => &mut self.minutes[i].1,
            None => {
                self.minutes.push((minute, BucketCounts::default()));
                &mut self.minutes.last_mut().expect("just pushed").1
            }
        };
        match counted {
            Counted::Bot => bucket.add_bot_click(),
            Counted::Human => bucket.add_human_click(os, false),
            Counted::HumanWithEvent => bucket.add_human_click(os, true),
        }
    }
}

/// A link's counts, and its campaign: a link's first human click is also one more unique
/// click of its campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkCount {
    pub campaign: CampaignId,
    pub count: Count,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    pub clicks: u64,
    pub bot_clicks: u64,
    /// `lead.link_clicked` events emitted.
    pub click_events: u64,
    /// The latest human click (unix ms), if any.
    pub last_clicked_at: Option<i64>,
    /// The earliest human click (unix ms), if any.
    pub first_clicked_at: Option<i64>,
}

/// What one click adds to the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Bot,
    Human,
    /// A human click that emitted `lead.link_clicked`.
    HumanWithEvent,
}

impl Count {
    fn add(&mut self, counted: Counted, at: i64) {
        if counted == Counted::Bot {
            self.bot_clicks += 1;
            return;
        }
        self.clicks += 1;
        self.click_events += u64::from(counted == Counted::HumanWithEvent);
        self.last_clicked_at = Some(self.last_clicked_at.map_or(at, |l| l.max(at)));
        self.first_clicked_at = Some(self.first_clicked_at.map_or(at, |f| f.min(at)));
    }
}

impl ClickCounts {
    /// `code` as a `&str`: a redirect has it as one, and a `ShortCode` is made only for a
    /// link not yet counted in this interval. `os` counts for human clicks only.
    pub fn add(
        &mut self,
        code: &str,
        campaign: &CampaignId,
        counted: Counted,
        os: Os,
        at: DateTime<Utc>,
    ) {
        let at = at.timestamp_millis();
        match self.links.get_mut(code) {
            Some(link) => link.count.add(counted, at),
            None => (self.links)
                .entry(ShortCode::from_trusted(code))
                .or_insert_with(|| LinkCount {
                    campaign: campaign.clone(),
                    count: Count::default(),
                })
                .count
                .add(counted, at),
        }
        match self.campaigns.get_mut(campaign) {
            Some(count) => count.add(counted, os, at),
            None => self
                .campaigns
                .entry(campaign.clone())
                .or_default()
                .add(counted, os, at),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Empties it, keeping room for about twice as many links and campaigns as it held:
    /// enough for the next interval without growing, while the memory of a burst is
    /// given back once traffic falls.
    pub fn clear(&mut self) {
        let (links, campaigns) = (self.links.len(), self.campaigns.len());
        self.links.clear();
        self.campaigns.clear();
        self.links.shrink_to(links * 2);
        self.campaigns.shrink_to(campaigns * 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::from_millis;

    #[test]
    fn a_campaign_counts_its_clicks_by_minute_with_the_humans_systems() {
        let mut counts = ClickCounts::default();
        let campaign = CampaignId::parse("c").unwrap();
        counts.add(
            "a",
            &campaign,
            Counted::HumanWithEvent,
            Os::Ios,
            from_millis(61_000),
        );
        counts.add("a", &campaign, Counted::Human, Os::Ios, from_millis(62_000));
        counts.add(
            "b",
            &campaign,
            Counted::Bot,
            Os::Android,
            from_millis(125_000),
        );
        let minutes = &counts.campaigns[&campaign].minutes;
        assert_eq!(minutes.len(), 2);
        assert_eq!(minutes[0].0, 60_000);
        assert_eq!((minutes[0].1.clicks, minutes[0].1.click_events), (2, 1));
        assert_eq!(minutes[0].1.os[Os::Ios as usize], 2);
        assert_eq!(minutes[1].1.bot_clicks, 1);
        assert!(
            minutes[1].1.os.iter().all(|n| *n == 0),
            "bots have no system"
        );
        assert_eq!(counts.campaigns[&campaign].count.clicks, 2);
    }

    fn counted(links: usize) -> ClickCounts {
        let mut counts = ClickCounts::default();
        let campaign = CampaignId::parse("c").unwrap();
        for i in 0..links {
            counts.add(
                &format!("l{i}"),
                &campaign,
                Counted::Bot,
                Os::Other,
                from_millis(0),
            );
        }
        counts
    }

    #[test]
    fn clearing_keeps_room_for_a_like_interval_but_not_for_a_past_burst() {
        let mut counts = counted(10_000);
        let room = counts.links.capacity();
        counts.clear();
        assert!(counts.is_empty());
        assert_eq!(
            counts.links.capacity(),
            room,
            "a like interval finds its room"
        );

        let mut quiet = counted(100);
        quiet.links.reserve(10_000);
        quiet.clear();
        assert!(quiet.links.capacity() < 1_000, "{}", quiet.links.capacity());
    }
}
