//! The campaigns port: every campaign that has had a link, newest first.

use super::{CampaignTotals, StoreError};
use crate::domain::{CampaignId, Page, Position};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A campaign, when its first link was created, and its counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignSummary {
    pub id: CampaignId,
    pub created_at: DateTime<Utc>,
    pub totals: CampaignTotals,
}

impl CampaignSummary {
    /// Its place in the list.
    pub fn position(&self) -> Position {
        Position::of(&self.created_at, self.id.as_str())
    }
}

#[async_trait]
pub trait CampaignStore: Send + Sync + 'static {
    /// Up to `limit` campaigns created before `before` (from the newest when `None`), the
    /// newest first: a campaign is created with its first link, and stays listed when its
    /// links are deleted.
    async fn list_campaigns(
        &self,
        before: Option<Position>,
        limit: usize,
    ) -> Result<Page<CampaignSummary>, StoreError>;
}
