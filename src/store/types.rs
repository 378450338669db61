//! The values the store takes and gives for clicks, events and webhooks.

use crate::domain::{CampaignId, ShortCode};
use crate::events::{Event, EventType};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::time::Duration;

/// A lead's human click: it opens the lead's dedup window and queues its event, unless a
/// window is already open. Either way it counts as a click.
#[derive(Debug, Clone)]
pub struct LeadClick {
    pub code: ShortCode,
    pub campaign_id: CampaignId,
    pub at: DateTime<Utc>,
    pub event: Event,
    pub window: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClickOutcome {
    /// A window (opened at that click time) was open: counted, no event.
    Deduplicated { window_opened_at: DateTime<Utc> },
    /// This click opened the window and its event is queued.
    Emitted,
}

/// Clicks that only count (bots, previews, links without a lead, and lead clicks already
/// known to fall in an open window), summed per link and per campaign between writes.
#[derive(Debug, Clone, Default)]
pub struct ClickCounts {
    pub links: HashMap<ShortCode, Count, ahash::RandomState>,
    pub campaigns: HashMap<CampaignId, Count, ahash::RandomState>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    pub clicks: u64,
    pub bot_clicks: u64,
    /// `lead.link_clicked` events emitted.
    pub click_events: u64,
    /// The latest human click (unix ms), if any.
    pub last_clicked_at: Option<i64>,
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
    }
}

impl ClickCounts {
    /// `code` as a `&str`: a redirect has it as one, and a `ShortCode` is made only for a
    /// link not yet counted in this interval.
    pub fn add(&mut self, code: &str, campaign: &CampaignId, counted: Counted, at: DateTime<Utc>) {
        let at = at.timestamp_millis();
        match self.links.get_mut(code) {
            Some(count) => count.add(counted, at),
            None => (self.links)
                .entry(ShortCode::from_trusted(code))
                .or_default()
                .add(counted, at),
        }
        match self.campaigns.get_mut(campaign) {
            Some(count) => count.add(counted, at),
            None => self
                .campaigns
                .entry(campaign.clone())
                .or_default()
                .add(counted, at),
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

/// A page of a list, oldest or newest first as the list says.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A webhook subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// `sub_…`
    pub id: String,
    pub url: String,
    /// `None`: every event type.
    pub event_types: Option<Vec<EventType>>,
    /// `None`: every campaign.
    pub campaign_ids: Option<Vec<CampaignId>>,
    pub description: Option<String>,
    /// `whsec_` + base64 of the signing key.
    pub secret: String,
    pub created_at: DateTime<Utc>,
    pub disabled: bool,
}

impl Subscription {
    pub fn wants(&self, event_type: EventType, campaign: &CampaignId) -> bool {
        !self.disabled
            && self
                .event_types
                .as_ref()
                .is_none_or(|t| t.contains(&event_type))
            && self
                .campaign_ids
                .as_ref()
                .is_none_or(|c| c.contains(campaign))
    }
}

/// A partial update; `Some(None)` clears a filter or the description.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionPatch {
    pub url: Option<String>,
    pub event_types: Option<Option<Vec<EventType>>>,
    pub campaign_ids: Option<Option<Vec<CampaignId>>>,
    pub description: Option<Option<String>>,
    pub disabled: Option<bool>,
    pub secret: Option<String>,
}

impl SubscriptionPatch {
    pub fn apply(&self, sub: &mut Subscription) {
        if let Some(url) = &self.url {
            sub.url = url.clone();
        }
        if let Some(types) = &self.event_types {
            sub.event_types = types.clone();
        }
        if let Some(campaigns) = &self.campaign_ids {
            sub.campaign_ids = campaigns.clone();
        }
        if let Some(description) = &self.description {
            sub.description = description.clone();
        }
        if let Some(disabled) = self.disabled {
            sub.disabled = disabled;
        }
        if let Some(secret) = &self.secret {
            sub.secret = secret.clone();
        }
    }
}

/// A delivery leased to a dispatcher: everything one attempt needs.
#[derive(Debug, Clone)]
pub struct DeliveryTask {
    pub subscription: Subscription,
    pub event_id: String,
    pub event_type: EventType,
    pub body: String,
    /// Attempts already made (0 for the first).
    pub attempts_made: u32,
    /// The backend's handle of the lease (the Redis stream entry).
    pub lease: String,
}

/// One attempt, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// RFC 3339 with milliseconds.
    pub at: String,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// What becomes of a delivery after an attempt (or instead of one).
#[derive(Debug, Clone)]
pub enum DeliveryOutcome {
    Delivered(Attempt),
    /// Failed; try again at the given time.
    Retry(Attempt, DateTime<Utc>),
    /// Failed for the last time.
    Failed(Attempt),
    /// The subscriber answered 410: failed, and the subscription is disabled.
    Gone(Attempt),
    /// Not attempted (the subscription's concurrency cap was reached); due again then.
    Deferred(DateTime<Utc>),
    /// Nothing to do (subscription deleted or disabled, delivery no longer pending).
    Dropped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// A delivery as the log shows it.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    pub event_id: String,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    pub attempts: Vec<Attempt>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// What became of a status report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusRecorded {
    /// First report of this status: counted, events queued.
    Recorded,
    /// Reported before: nothing done.
    Repeated,
    /// No such message (or it expired).
    UnknownMessage,
}

/// Where a page of a list ended: the creation time (ms) and id of its last item. Every
/// list of both stores orders by creation time and then id, and its cursor is this, as
/// `<13-digit ms>:<id>`: any cursor of that form names a place in the list, whoever made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub ms: i64,
    pub id: String,
}

impl Position {
    pub fn of(at: &DateTime<Utc>, id: &str) -> Self {
        Self {
            ms: at.timestamp_millis(),
            id: id.to_owned(),
        }
    }

    pub fn parse(cursor: &str) -> Result<Self, super::StoreError> {
        let (ms, id) = cursor
            .split_once(':')
            .ok_or(super::StoreError::InvalidCursor)?;
        let is_id = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ms.len() != 13 || !ms.bytes().all(|b| b.is_ascii_digit()) || !is_id {
            return Err(super::StoreError::InvalidCursor);
        }
        Ok(Self {
            ms: ms.parse().map_err(|_| super::StoreError::InvalidCursor)?,
            id: id.to_owned(),
        })
    }

    /// The cursor text; also the member of Redis' lexically ordered indexes.
    pub fn render(&self) -> String {
        format!("{:013}:{}", self.ms, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::from_millis;

    #[test]
    fn a_cursor_is_thirteen_digits_and_an_id() {
        let position = Position::parse("1706443200000:abc_-9").unwrap();
        assert_eq!(position.ms, 1_706_443_200_000);
        assert_eq!(position.render(), "1706443200000:abc_-9");
        assert_eq!(
            Position::of(&from_millis(5), "x").render(),
            "0000000000005:x"
        );
        for bad in [
            "",
            "17:abc",
            "1706443200000",
            "1706443200000:",
            "170644320000a:x",
            "1706443200000:a b",
        ] {
            assert!(Position::parse(bad).is_err(), "{bad}");
        }
    }

    fn counted(links: usize) -> ClickCounts {
        let mut counts = ClickCounts::default();
        let campaign = CampaignId::parse("c").unwrap();
        for i in 0..links {
            counts.add(&format!("l{i}"), &campaign, Counted::Bot, from_millis(0));
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
