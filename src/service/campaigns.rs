//! Campaigns: their list, their counters and their analytics.

use crate::domain::analytics::{AnalyticsQuery, Report};
use crate::domain::{CampaignId, Page, Position};
use crate::store::{CampaignStore, CampaignSummary, CampaignTotals, ClickStore, StoreError};
use std::sync::Arc;

pub struct Campaigns {
    store: Arc<dyn CampaignStore>,
    counters: Arc<dyn ClickStore>,
}

impl Campaigns {
    pub fn new(store: Arc<dyn CampaignStore>, counters: Arc<dyn ClickStore>) -> Self {
        Self { store, counters }
    }

    /// Newest first.
    pub async fn list(
        &self,
        before: Option<Position>,
        limit: usize,
    ) -> Result<Page<CampaignSummary>, StoreError> {
        self.store.list_campaigns(before, limit).await
    }

    /// A campaign's counters (zero for a campaign without links).
    pub async fn totals(&self, campaign: &CampaignId) -> Result<CampaignTotals, StoreError> {
        self.counters.campaign_totals(campaign).await
    }

    /// A campaign's analytics over the query's range, from the tier of buckets its
    /// interval is summed from.
    pub async fn analytics(
        &self,
        campaign: &CampaignId,
        query: &AnalyticsQuery,
    ) -> Result<Report, StoreError> {
        let (tier, from, end) = query.reads();
        let buckets = self
            .counters
            .campaign_series(campaign, tier, from, end)
            .await?;
        Ok(query.report(&buckets))
    }
}
