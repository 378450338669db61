//! The redirect cache: links by code, in front of the store, on every instance.
//!
//! A PATCH or DELETE drops the link here at once (the instance that served it) and, through
//! the store's change feed, on every other instance within milliseconds. The time-to-live
//! is only the backstop for a change feed that is down while the store is up.
//!
//! A load that raced with an invalidation must not put the old value back: every
//! invalidation bumps `epoch`, and a load only inserts what it read if no invalidation
//! happened since it started.

use crate::domain::{Link, ShortCode};
use crate::store::{LinkChange, Store, StoreError};
use axum::http::HeaderValue;
use moka::future::Cache;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A cached link with its `Location` header already built, so a hit costs no parsing.
#[derive(Debug)]
pub struct CachedLink {
    pub link: Link,
    pub location: HeaderValue,
}

pub struct LinkCache {
    /// aHash with a random key: fast, and still resistant to crafted collisions (codes
    /// come from request paths).
    links: Cache<ShortCode, Arc<CachedLink>, ahash::RandomState>,
    epoch: AtomicU64,
    hits: metrics::Counter,
    misses: metrics::Counter,
}

impl LinkCache {
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            links: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build_with_hasher(ahash::RandomState::new()),
            epoch: AtomicU64::new(0),
            hits: metrics::counter!("akti_link_cache_total", "result" => "hit"),
            misses: metrics::counter!("akti_link_cache_total", "result" => "miss"),
        }
    }

    /// The link for `code`, from the cache or else the store. `Ok(None)`: no such link.
    pub async fn lookup(
        &self,
        code: &str,
        store: &dyn Store,
    ) -> Result<Option<Arc<CachedLink>>, StoreError> {
        if let Some(hit) = self.links.get(code).await {
            self.hits.increment(1);
            return Ok(Some(hit));
        }
        self.misses.increment(1);
        let epoch = self.epoch.load(Ordering::Acquire);
        let code = ShortCode::from_trusted(code.to_owned());
        let Some(link) = store.get_link(&code).await? else {
            return Ok(None);
        };
        // Stored URLs are WHATWG serialisations: ASCII without controls, always a valid
        // header value.
        let location = HeaderValue::from_str(link.url.as_str())
            .map_err(|_| StoreError::Corrupt(format!("link {code}: url is not a header value")))?;
        let entry = Arc::new(CachedLink { link, location });
        if self.epoch.load(Ordering::Acquire) == epoch {
            self.links.insert(code, entry.clone()).await;
        }
        Ok(Some(entry))
    }

    pub async fn apply(&self, change: LinkChange) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        match change {
            LinkChange::One(code) => self.links.invalidate(&code).await,
            LinkChange::All => self.links.invalidate_all(),
        }
    }

    /// Entries currently held (approximate; for metrics and the memory benchmark).
    pub fn len(&self) -> u64 {
        self.links.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
