//! The list of campaigns in SQLite: the `campaigns` table, newest first.

use super::{EmbeddedStore, sqlite};
use crate::domain::{CampaignId, Page, Position, from_millis};
use crate::store::{CampaignStore, CampaignSummary, ClickStore, StoreError};
use async_trait::async_trait;
use rusqlite::params;

#[async_trait]
impl CampaignStore for EmbeddedStore {
    async fn list_campaigns(
        &self,
        before: Option<Position>,
        limit: usize,
    ) -> Result<Page<CampaignSummary>, StoreError> {
        let (ms, id) = before.map_or((i64::MAX, String::new()), |p| (p.ms, p.id));
        let found: Vec<(String, i64)> = self
            .read(move |conn| {
                let mut select = conn
                    .prepare_cached(
                        "SELECT campaign_id, created_at FROM campaigns \
                         WHERE created_at < ?1 OR (created_at = ?1 AND campaign_id < ?2) \
                         ORDER BY created_at DESC, campaign_id DESC LIMIT ?3",
                    )
                    .map_err(sqlite)?;
                let rows = select
                    .query_map(params![ms, id, limit as i64 + 1], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .map_err(sqlite)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sqlite)
            })
            .await?;
        let mut campaigns = Vec::with_capacity(found.len());
        for (id, created) in found {
            let id = CampaignId::from_trusted(id);
            let totals = self.campaign_totals(&id).await?;
            campaigns.push(CampaignSummary {
                id,
                created_at: from_millis(created),
                totals,
            });
        }
        Ok(Page::of(campaigns, limit, CampaignSummary::position))
    }
}
