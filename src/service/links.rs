//! Links: create, read, change, delete, list, and their counters. A change or deletion
//! drops the link from this instance's cache before it is answered, and from every other
//! instance's through the change feed.

use crate::cache::LinkCache;
use crate::domain::{
    CampaignId, CampaignPatch, CampaignState, Link, LinkPatch, NewLink, Page, Phone, Position,
    ShortCode, Stats,
};
use crate::store::{
    ChangeFeed, ClickStore, Created, Erasure, LeadStore, LinkChange, LinkQuery, LinkStore,
    StoreError,
};
use std::sync::Arc;

/// Links per page of an export: a page is one read of the index and one of the counters.
const EXPORT_PAGE: usize = 1000;

pub struct Links {
    store: Arc<dyn LinkStore>,
    leads: Arc<dyn LeadStore>,
    counters: Arc<dyn ClickStore>,
    cache: Arc<LinkCache>,
    /// `None` when no other instance shares the store.
    feed: Option<Arc<dyn ChangeFeed>>,
    code_length: usize,
}

impl Links {
    pub fn new(
        store: Arc<dyn LinkStore>,
        leads: Arc<dyn LeadStore>,
        counters: Arc<dyn ClickStore>,
        cache: Arc<LinkCache>,
        feed: Option<Arc<dyn ChangeFeed>>,
        code_length: usize,
    ) -> Self {
        Self {
            store,
            leads,
            counters,
            cache,
            feed,
            code_length,
        }
    }

    /// Creates links or finds them by their identity, in the order given.
    pub async fn create(&self, links: Vec<NewLink>) -> Result<Vec<Created>, StoreError> {
        self.store.create_links(links, self.code_length).await
    }

    /// Links as they answer: governed by their campaigns' states.
    async fn governed(&self, mut links: Vec<Link>) -> Result<Vec<Link>, StoreError> {
        let mut states: Vec<(CampaignId, CampaignState)> = Vec::new();
        for link in &mut links {
            let at = match states.iter().position(|(c, _)| *c == link.campaign_id) {
                Some(at) => at,
                None => {
                    let state = self.store.campaign_state(&link.campaign_id).await?;
                    states.push((link.campaign_id.clone(), state));
                    states.len() - 1
                }
            };
            states[at].1.govern(link);
        }
        Ok(links)
    }

    async fn governed_one(&self, link: Option<Link>) -> Result<Option<Link>, StoreError> {
        Ok(self.governed(link.into_iter().collect()).await?.pop())
    }

    pub async fn get(&self, code: &ShortCode) -> Result<Option<Link>, StoreError> {
        let link = self.store.get_link(code).await?;
        self.governed_one(link).await
    }

    pub async fn patch(
        &self,
        code: &ShortCode,
        patch: &LinkPatch,
    ) -> Result<Option<Link>, StoreError> {
        let link = self.store.update_link(code, patch).await?;
        if link.is_some() {
            self.changed(LinkChange::One(code.clone())).await;
        }
        self.governed_one(link).await
    }

    /// Every link of the campaign at once (one write); answered once this instance's cache
    /// has dropped them, and the other instances' follow through the change feed.
    pub async fn patch_campaign(
        &self,
        campaign: &CampaignId,
        patch: &CampaignPatch,
    ) -> Result<CampaignState, StoreError> {
        let state = self.store.patch_campaign(campaign, patch).await?;
        self.changed(LinkChange::Campaign(campaign.clone())).await;
        Ok(state)
    }

    pub async fn delete(&self, code: &ShortCode) -> Result<bool, StoreError> {
        let deleted = self.store.delete_link(code).await?;
        if deleted {
            self.changed(LinkChange::One(code.clone())).await;
        }
        Ok(deleted)
    }

    /// Erases a lead (a privacy request): its links leave this instance's cache before the
    /// answer, and every other instance's through the change feed.
    pub async fn erase_lead(&self, phone: &Phone) -> Result<Erasure, StoreError> {
        let erasure = self.leads.erase_lead(phone).await?;
        for code in &erasure.links {
            self.changed(LinkChange::One(code.clone())).await;
        }
        Ok(erasure)
    }

    pub async fn list(&self, query: &LinkQuery) -> Result<Page<Link>, StoreError> {
        let page = self.store.list_links(query).await?;
        Ok(Page {
            items: self.governed(page.items).await?,
            ..page
        })
    }

    /// One page of a campaign's links after `after`, each with its counters, and where the
    /// next page starts (`None` after the last): an export walks the campaign this way,
    /// holding one page at a time.
    pub async fn export_page(
        &self,
        campaign: &CampaignId,
        after: Position,
    ) -> Result<(Vec<(Link, Stats)>, Option<Position>), StoreError> {
        self.links_page(campaign, after, EXPORT_PAGE).await
    }

    /// Up to `limit` of a campaign's links after `after`, with their counters, and where
    /// the next page starts.
    pub async fn links_page(
        &self,
        campaign: &CampaignId,
        after: Position,
        limit: usize,
    ) -> Result<(Vec<(Link, Stats)>, Option<Position>), StoreError> {
        let query = LinkQuery {
            campaign_id: Some(campaign.clone()),
            phone: None,
            after,
            limit,
        };
        let page = self.list(&query).await?;
        let codes: Vec<ShortCode> = page.items.iter().map(|l| l.code.clone()).collect();
        let stats = self.counters.links_stats(&codes).await?;
        let next = page.next_cursor.as_deref().and_then(Position::parse);
        Ok((page.items.into_iter().zip(stats).collect(), next))
    }

    /// A link's counters; `None` when there is no such link.
    pub async fn stats(&self, code: &ShortCode) -> Result<Option<Stats>, StoreError> {
        if self.store.get_link(code).await?.is_none() {
            return Ok(None);
        }
        self.counters.link_stats(code).await.map(Some)
    }

    /// The change is committed whatever happens here; a failed announcement is logged, and
    /// leaves other instances with the old link until their feed reconnects (which drops
    /// their whole cache) or the entry's time-to-live.
    async fn changed(&self, change: LinkChange) {
        self.cache.forget(change.clone());
        if let Some(feed) = &self.feed
            && let Err(e) = feed.announce(&change).await
        {
            tracing::warn!(error = %e, change = change.payload(), "could not announce a link change");
        }
    }
}
