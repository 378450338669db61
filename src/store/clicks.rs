//! The clicks port: lead clicks with their windows and events, counts, and counters.

use super::StoreError;
use crate::domain::analytics::{BucketCounts, Tier};
use crate::domain::{CampaignId, ClickCounts, ClickOutcome, LeadClick, ShortCode, Stats};
use async_trait::async_trait;
use std::time::Duration;

/// A campaign's counters and its number of links.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignTotals {
    pub links: u64,
    pub stats: Stats,
}

#[async_trait]
pub trait ClickStore: Send + Sync + 'static {
    /// Records a batch of lead clicks in one round trip (Redis) or one transaction
    /// (SQLite), in order, each deciding its dedup window of length `window` as
    /// [`crate::domain::rules::window`] says. Opening a click's window and queueing its
    /// event for every matching subscription are one atomic step; when this returns `Ok`,
    /// the events are durable. Writing the same clicks again answers the same and queues
    /// nothing twice.
    async fn record_lead_clicks(
        &self,
        clicks: &[LeadClick],
        window: Duration,
    ) -> Result<Vec<ClickOutcome>, StoreError>;

    /// Adds clicks that only count, and what they add to their campaigns' series (with
    /// the unique clicks and times to click of the links first clicked). `batch` names
    /// these counts: written again under the same name (after a timeout whose write may
    /// still have run), they are added once.
    async fn add_click_counts(&self, batch: &str, counts: &ClickCounts) -> Result<(), StoreError>;

    async fn link_stats(&self, code: &ShortCode) -> Result<Stats, StoreError>;

    /// The counters of each of `codes`, in order, in one round trip or read.
    async fn links_stats(&self, codes: &[ShortCode]) -> Result<Vec<Stats>, StoreError>;

    async fn campaign_totals(&self, campaign: &CampaignId) -> Result<CampaignTotals, StoreError>;

    /// The campaign's series buckets of `tier` that start in `[from, end)` (unix ms), in
    /// any order; empty buckets may be left out.
    async fn campaign_series(
        &self,
        campaign: &CampaignId,
        tier: Tier,
        from: i64,
        end: i64,
    ) -> Result<Vec<(i64, BucketCounts)>, StoreError>;
}
