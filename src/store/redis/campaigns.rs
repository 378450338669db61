//! The list of campaigns in Redis (see [`super::keys`]): newest first, each with its
//! counters.

use super::{RedisStore, keys};
use crate::domain::{CampaignId, Page, Position, from_millis};
use crate::store::{CampaignStore, CampaignSummary, ClickStore, StoreError};
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};

/// Campaigns whose counters are read at once.
const CAMPAIGNS_AT_ONCE: usize = 16;

#[async_trait]
impl CampaignStore for RedisStore {
    async fn list_campaigns(
        &self,
        before: Option<Position>,
        limit: usize,
    ) -> Result<Page<CampaignSummary>, StoreError> {
        let from = before.map_or("+".to_owned(), |p| format!("({}", p.render()));
        let mut range = redis::cmd("ZRANGE");
        range.arg(keys::CAMPAIGNS_ORDER).arg(&from).arg("-");
        range
            .arg("BYLEX")
            .arg("REV")
            .arg("LIMIT")
            .arg(0)
            .arg(limit + 1);
        let members: Vec<String> = self.query(&range).await?;
        let positions = (members.iter())
            .map(|m| {
                Position::parse(m)
                    .ok_or_else(|| StoreError::Corrupt(format!("a campaign's place {m:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let totals = positions.into_iter().map(|p| async move {
            let id = CampaignId::from_trusted(p.id);
            let totals = self.campaign_totals(&id).await?;
            Ok::<_, StoreError>(CampaignSummary {
                id,
                created_at: from_millis(p.ms),
                totals,
            })
        });
        // A few campaigns at a time: each is 32 reads.
        let found: Vec<CampaignSummary> = futures::stream::iter(totals)
            .buffered(CAMPAIGNS_AT_ONCE)
            .try_collect()
            .await?;
        Ok(Page::of(found, limit, CampaignSummary::position))
    }
}
