//! Links: create, read, change, delete, list, and their counters. A change or deletion
//! drops the link from this instance's cache before it is answered, and from every other
//! instance's through the change feed.

use crate::cache::LinkCache;
use crate::domain::{Link, LinkPatch, NewLink, Page, ShortCode, Stats};
use crate::store::{ChangeFeed, ClickStore, Created, LinkChange, LinkQuery, LinkStore, StoreError};
use std::sync::Arc;

pub struct Links {
    store: Arc<dyn LinkStore>,
    counters: Arc<dyn ClickStore>,
    cache: Arc<LinkCache>,
    /// `None` when no other instance shares the store.
    feed: Option<Arc<dyn ChangeFeed>>,
    code_length: usize,
}

impl Links {
    pub fn new(
        store: Arc<dyn LinkStore>,
        counters: Arc<dyn ClickStore>,
        cache: Arc<LinkCache>,
        feed: Option<Arc<dyn ChangeFeed>>,
        code_length: usize,
    ) -> Self {
        Self {
            store,
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

    pub async fn get(&self, code: &ShortCode) -> Result<Option<Link>, StoreError> {
        self.store.get_link(code).await
    }

    pub async fn patch(
        &self,
        code: &ShortCode,
        patch: &LinkPatch,
    ) -> Result<Option<Link>, StoreError> {
        let link = self.store.update_link(code, patch).await?;
        if link.is_some() {
            self.changed(code).await;
        }
        Ok(link)
    }

    pub async fn delete(&self, code: &ShortCode) -> Result<bool, StoreError> {
        let deleted = self.store.delete_link(code).await?;
        if deleted {
            self.changed(code).await;
        }
        Ok(deleted)
    }

    pub async fn list(&self, query: &LinkQuery) -> Result<Page<Link>, StoreError> {
        self.store.list_links(query).await
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
    async fn changed(&self, code: &ShortCode) {
        self.cache.forget(LinkChange::One(code.clone()));
        if let Some(feed) = &self.feed
            && let Err(e) = feed.announce(code).await
        {
            tracing::warn!(error = %e, code = %code, "could not announce a link change");
        }
    }
}
