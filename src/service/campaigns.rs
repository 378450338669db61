//! Campaigns: their list and their counters.

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
}
