//! The redirect cache: links by code, in front of the store, on every instance.
//!
//! A PATCH or DELETE drops the link here at once (the instance that served it) and, through
//! the store's change feed, on every other instance within milliseconds.
//!
//! The contract promises that a change reaches every instance within one second, so the
//! cache does not simply trust the feed: the feed confirms several times a second that it
//! is caught up ([`FeedListener::caught_up`]), and an entry is served only while the last
//! confirmation is less than [`TRUST_FOR`] old. Without one (the feed hangs or is
//! reconnecting), a hit is read again from the store; if the store is down, or does not
//! answer within [`STALL_AFTER`], the cached link is served (the contract's outage rule),
//! and while the [`StoreHealth`] says the store is stalled hits are served without asking,
//! so that a frozen store does not make every redirect wait. The time-to-live only bounds
//! how long an unused entry takes memory.
//!
//! A load that raced with an invalidation must not put the old value back: every
//! invalidation bumps `epoch`, and a load only inserts what it read if no invalidation
//! happened since it started.
//!
//! Links of one campaign share one [`SharedCampaign`] (a campaign sends to thousands of
//! leads): entries take it from `campaigns`, which the periodic sweep empties of campaigns
//! no entry holds any more. A link is cached as its campaign's state governs it; a change
//! of the campaign outdates all its entries at once (they are read again when next used).

mod entry;
mod shards;

pub use entry::{CachedLink, SharedCampaign};

use crate::domain::{CampaignId, Link, ShortCode};
use crate::store::health::{STALL_AFTER, StoreHealth};
use crate::store::{FeedListener, LinkChange, LinkStore, StoreError};
use shards::Shards;
use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long after the change feed's last confirmation cached links are still served.
pub const TRUST_FOR: Duration = Duration::from_secs(1);

pub struct LinkCache {
    store: Arc<dyn LinkStore>,
    links: Shards,
    /// The campaigns the entries share. A std mutex: taken on a miss, never across an
    /// await.
    campaigns: Mutex<HashSet<Held, ahash::RandomState>>,
    /// How long an unused entry may stay (memory only; see the module's text).
    ttl: Duration,
    epoch: AtomicU64,
    origin: Instant,
    /// When the change feed last said it was caught up. `None` when no one else changes
    /// the store: entries stay true until this instance changes them (and drops them).
    feed_caught_up: Option<Moment>,
    health: Arc<StoreHealth>,
    hits: metrics::Counter,
    misses: metrics::Counter,
    unconfirmed: metrics::Counter,
}

/// An instant in an atomic: milliseconds from the cache's `origin`, plus one; 0 for never.
#[derive(Default)]
struct Moment(AtomicU64);

impl Moment {
    fn mark(&self, origin: Instant, at: Instant) {
        let ms = at.saturating_duration_since(origin).as_millis() as u64 + 1;
        self.0.fetch_max(ms, Ordering::AcqRel);
    }

    /// Whether the moment is set and at most `limit` ago.
    fn within(&self, origin: Instant, limit: Duration) -> bool {
        match self.0.load(Ordering::Acquire) {
            0 => false,
            ms => {
                let now = origin.elapsed().as_millis() as u64 + 1;
                now.saturating_sub(ms) <= limit.as_millis() as u64
            }
        }
    }
}

impl LinkCache {
    /// `follows_feed`: whether entries must be confirmed by a change feed (a store shared
    /// with other instances).
    pub fn new(
        store: Arc<dyn LinkStore>,
        capacity: u64,
        ttl: Duration,
        follows_feed: bool,
        health: Arc<StoreHealth>,
    ) -> Self {
        Self {
            store,
            links: Shards::new(capacity),
            campaigns: Mutex::default(),
            ttl,
            epoch: AtomicU64::new(0),
            origin: Instant::now(),
            feed_caught_up: follows_feed.then(Moment::default),
            health,
            hits: metrics::counter!("akti_link_cache_total", "result" => "hit"),
            misses: metrics::counter!("akti_link_cache_total", "result" => "miss"),
            unconfirmed: metrics::counter!("akti_link_cache_total", "result" => "unconfirmed"),
        }
    }

    /// The link for `code`, from the cache or else the store. `Ok(None)`: no such link.
    pub async fn lookup(&self, code: &str) -> Result<Option<Arc<CachedLink>>, StoreError> {
        let cached = self.links.get(code);
        if let Some(hit) = &cached {
            // An entry its campaign's change outdated is read again, and kept only to
            // serve if the store cannot answer.
            if hit.is_outdated() {
                self.misses.increment(1);
            } else if self.trusted() {
                self.hits.increment(1);
                return Ok(Some(hit.clone()));
            } else {
                self.unconfirmed.increment(1);
            }
        } else {
            self.misses.increment(1);
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let code = ShortCode::from_trusted(code);
        let read = self.read(&code);
        // With a cached link to fall back on, a slow store is not waited for.
        let read = match &cached {
            Some(_) => tokio::time::timeout(STALL_AFTER, read)
                .await
                .unwrap_or_else(|_| Err(StoreError::unavailable(Stalled))),
            None => read.await,
        };
        let link = match read {
            Ok(Some(link)) => link,
            Ok(None) => {
                if cached.is_some() {
                    self.links.remove(code.as_str());
                }
                return Ok(None);
            }
            // The store is down or stalled: what this instance knows keeps redirecting.
            Err(e) => {
                self.health.stalled();
                return cached.map(Some).ok_or(e);
            }
        };
        self.health.answered();
        let entry = Arc::new(CachedLink::new(&link, self.shared(&link.campaign_id)));
        if !entry.is_servable() {
            return Err(StoreError::Corrupt(format!(
                "link {code}: url is not a header value"
            )));
        }
        if self.epoch.load(Ordering::Acquire) == epoch {
            self.links.insert(entry.clone());
        }
        Ok(Some(entry))
    }

    /// The link as its campaign governs it.
    async fn read(&self, code: &ShortCode) -> Result<Option<Link>, StoreError> {
        let Some(mut link) = self.store.get_link(code).await? else {
            return Ok(None);
        };
        let state = self.store.campaign_state(&link.campaign_id).await?;
        state.govern(&mut link);
        Ok(Some(link))
    }

    /// What the entries of `campaign` share.
    fn shared(&self, campaign: &CampaignId) -> Arc<SharedCampaign> {
        let mut campaigns = self.campaigns.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(held) = campaigns.get(campaign.as_str()) {
            return held.0.clone();
        }
        let shared = Arc::new(SharedCampaign::new(campaign.clone()));
        campaigns.insert(Held(shared.clone()));
        shared
    }

    /// Whether cached entries may be served without asking the store: the feed confirms
    /// it is caught up, or the store is stalled (asking it would only make every redirect
    /// wait, and the outage rule serves the cached link).
    fn trusted(&self) -> bool {
        let confirmed = (self.feed_caught_up.as_ref())
            .is_none_or(|caught_up| caught_up.within(self.origin, TRUST_FOR));
        confirmed || self.health.is_stalled()
    }

    /// Drops what changed, at once.
    pub fn forget(&self, change: LinkChange) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        match change {
            LinkChange::One(code) => self.links.remove(code.as_str()),
            LinkChange::Campaign(campaign) => {
                let campaigns = self.campaigns.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(held) = campaigns.get(campaign.as_str()) {
                    held.0.changed();
                }
            }
            LinkChange::All => self.links.clear(),
        }
    }

    /// Drops entries unused for longer than the time-to-live, every quarter of it (at
    /// most every minute), until `shutdown`.
    pub async fn sweep_until(&self, shutdown: tokio_util::sync::CancellationToken) {
        let every = (self.ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => self.sweep(),
                () = shutdown.cancelled() => return,
            }
        }
    }

    fn sweep(&self) {
        self.links.sweep(self.ttl);
        // Campaigns only the set holds: their entries are all gone.
        let mut campaigns = self.campaigns.lock().unwrap_or_else(|p| p.into_inner());
        campaigns.retain(|held| Arc::strong_count(&held.0) > 1);
    }

    /// Entries currently held (for metrics and the memory benchmark).
    pub fn entries(&self) -> u64 {
        self.links.len()
    }
}

impl FeedListener for LinkCache {
    fn changed(&self, change: LinkChange) {
        self.forget(change);
    }

    fn caught_up(&self, at: Instant) {
        if let Some(caught_up) = &self.feed_caught_up {
            caught_up.mark(self.origin, at);
        }
    }
}

/// A shared campaign in the set, found by its id.
struct Held(Arc<SharedCampaign>);

impl Hash for Held {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.id.as_str().hash(state);
    }
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for Held {}

impl Borrow<str> for Held {
    fn borrow(&self) -> &str {
        self.0.id.as_str()
    }
}

/// A store read that took longer than [`STALL_AFTER`].
#[derive(Debug, thiserror::Error)]
#[error("the store did not answer within {STALL_AFTER:?}")]
struct Stalled;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CampaignPatch, CampaignState, LinkPatch, NewLink, Page};
    use crate::store::{Created, LinkQuery};

    /// A store without links, for what the cache does on its own.
    struct NoLinks;

    #[async_trait::async_trait]
    impl LinkStore for NoLinks {
        async fn create_links(
            &self,
            _: Vec<NewLink>,
            _: usize,
        ) -> Result<Vec<Created>, StoreError> {
            Ok(Vec::new())
        }
        async fn get_link(&self, _: &ShortCode) -> Result<Option<Link>, StoreError> {
            Ok(None)
        }
        async fn update_link(
            &self,
            _: &ShortCode,
            _: &LinkPatch,
        ) -> Result<Option<Link>, StoreError> {
            Ok(None)
        }
        async fn delete_link(&self, _: &ShortCode) -> Result<bool, StoreError> {
            Ok(false)
        }
        async fn list_links(&self, _: &LinkQuery) -> Result<Page<Link>, StoreError> {
            Ok(Page::of(Vec::new(), 1, |_: &Link| unreachable!()))
        }
        async fn campaign_state(&self, _: &CampaignId) -> Result<CampaignState, StoreError> {
            Ok(CampaignState::default())
        }
        async fn patch_campaign(
            &self,
            _: &CampaignId,
            _: &CampaignPatch,
        ) -> Result<CampaignState, StoreError> {
            Ok(CampaignState::default())
        }
    }

    #[test]
    fn links_of_one_campaign_share_it_until_no_entry_holds_it() {
        let cache = LinkCache::new(
            Arc::new(NoLinks),
            10,
            Duration::from_secs(60),
            false,
            Arc::default(),
        );
        let first = cache.shared(&CampaignId::parse("spring").unwrap());
        let second = cache.shared(&CampaignId::parse("spring").unwrap());
        let other = cache.shared(&CampaignId::parse("autumn").unwrap());
        assert!(Arc::ptr_eq(&first, &second));
        assert!(!Arc::ptr_eq(&first, &other));

        drop((first, second));
        cache.sweep();
        let held = cache.campaigns.lock().unwrap();
        assert_eq!(held.len(), 1, "only the campaign still in use stays");
        assert!(held.contains("autumn"));
    }
}
