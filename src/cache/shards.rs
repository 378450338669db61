//! A bounded map from short code to cached link: least recently used entries go first,
//! and entries unused for longer than the time-to-live are swept out.
//!
//! Split into shards, each an `lru::LruCache` behind its own lock, so that redirects on
//! different cores rarely wait for each other; a lock is held for one map operation,
//! never across an await. The capacity is shared, not divided: when the whole holds more
//! than `capacity` entries, the shard taking a new entry drops its least recently used
//! (equal fixed parts would make a shard that the hash gave more codes evict while others
//! have room).
//!
//! The entry is its own key (hashed and compared by its code), so a shard's list node is
//! one pointer and two links. Not moka: its bookkeeping per entry alone is about the whole
//! budget of a cached link (`bench/NOTES.md`).

use super::entry::CachedLink;
use lru::LruCache;
use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const SHARDS: usize = 16;

pub struct Shards {
    shards: Box<[Mutex<Shard>]>,
    capacity: u64,
    /// Entries in all shards together.
    len: AtomicU64,
    /// Picks a code's shard. Random per process: codes come from request paths, and a
    /// predictable spread could be aimed at one shard.
    spread: ahash::RandomState,
    origin: Instant,
}

type Shard = LruCache<Entry, (), ahash::RandomState>;

/// A cached link as the key of its own entry: equal, and hashed, as its code is (so that
/// a shard can be searched with a `&str`).
struct Entry(Arc<CachedLink>);

impl Hash for Entry {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.code().hash(state);
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.0.code() == other.0.code()
    }
}

impl Eq for Entry {}

impl Borrow<str> for Entry {
    fn borrow(&self) -> &str {
        self.0.code()
    }
}

impl Shards {
    pub fn new(capacity: u64) -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(LruCache::unbounded_with_hasher(ahash::RandomState::new())))
                .collect(),
            capacity: capacity.max(1),
            len: AtomicU64::new(0),
            spread: ahash::RandomState::new(),
            origin: Instant::now(),
        }
    }

    fn shard(&self, code: &str) -> MutexGuard<'_, Shard> {
        let index = self.spread.hash_one(code) as usize % SHARDS;
        // A panic while holding the lock cannot leave an LruCache half-updated in a way
        // that matters here: at worst an entry is missing.
        self.shards[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn now(&self) -> u32 {
        self.origin.elapsed().as_secs() as u32
    }

    pub fn get(&self, code: &str) -> Option<Arc<CachedLink>> {
        let now = self.now();
        let mut shard = self.shard(code);
        let (Entry(link), ()) = shard.get_key_value(code)?;
        link.mark_used(now);
        Some(link.clone())
    }

    /// Keyed by the link's own code.
    pub fn insert(&self, link: Arc<CachedLink>) {
        link.mark_used(self.now());
        let mut shard = self.shard(link.code());
        // `put` would keep the old key (and so the old link) when the code is present.
        if shard.pop(link.code()).is_some() {
            shard.put(Entry(link), ());
            return; // replaced an entry: no more entries than before
        }
        shard.put(Entry(link), ());
        let mut len = self.len.fetch_add(1, Ordering::AcqRel) + 1;
        while len > self.capacity && shard.pop_lru().is_some() {
            len = self.len.fetch_sub(1, Ordering::AcqRel) - 1;
        }
    }

    pub fn remove(&self, code: &str) {
        if self.shard(code).pop(code).is_some() {
            self.len.fetch_sub(1, Ordering::AcqRel);
        }
    }

    pub fn clear(&self) {
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            self.len.fetch_sub(shard.len() as u64, Ordering::AcqRel);
            shard.clear();
        }
    }

    /// Drops the entries unused for longer than `ttl`. The least recently used entry of a
    /// shard is also its longest unused, so each shard is swept from its tail only.
    pub fn sweep(&self, ttl: Duration) {
        let now = self.now();
        let ttl = ttl.as_secs().min(u64::from(u32::MAX)) as u32;
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            while shard
                .peek_lru()
                .is_some_and(|(Entry(link), ())| now.saturating_sub(link.used_at()) > ttl)
            {
                shard.pop_lru();
                self.len.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    pub fn len(&self) -> u64 {
        self.len.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::entry::SharedCampaign;
    use crate::domain::{CampaignId, Destination, Link, Routing, from_millis};

    fn link(code: &str) -> Arc<CachedLink> {
        let campaign_id = CampaignId::parse("c").unwrap();
        let campaign = Arc::new(SharedCampaign::new(campaign_id.clone()));
        Arc::new(CachedLink::new(
            &Link {
                code: crate::domain::ShortCode::parse(code).unwrap(),
                campaign_id,
                phone: None,
                external_lead_id: None,
                url: Destination::parse("https://example.com/").unwrap(),
                created_at: from_millis(0),
                expires_at: None,
                disabled: false,
                liveness_set_at: None,
                routing: Routing::default(),
            },
            campaign,
        ))
    }

    #[test]
    fn holds_no_more_than_its_capacity_and_keeps_recently_used_links() {
        let cache = Shards::new(1_000);
        cache.insert(link("kept"));
        for i in 0..10_000 {
            cache.insert(link(&format!("c{i}")));
            // Reading it keeps it among the most recently used of its shard.
            assert!(cache.get("kept").is_some(), "evicted after {i} inserts");
        }
        let held: usize = cache.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert_eq!(cache.len(), 1_000);
        assert_eq!(held, 1_000);
        assert!(cache.get("c0").is_none());
        assert!(cache.get("c9999").is_some());
    }

    #[test]
    fn a_cycle_through_as_many_links_as_the_capacity_only_hits() {
        let cache = Shards::new(5_000);
        let codes: Vec<String> = (0..5_000).map(|i| format!("c{i}")).collect();
        for code in &codes {
            cache.insert(link(code));
        }
        let misses = (codes.iter()).filter(|c| cache.get(c).is_none()).count();
        assert_eq!(misses, 0);
    }

    #[test]
    fn a_new_link_for_a_code_replaces_the_old_one() {
        let cache = Shards::new(100);
        let (old, new) = (link("a"), link("a"));
        cache.insert(old);
        cache.insert(new.clone());
        assert!(Arc::ptr_eq(&cache.get("a").unwrap(), &new));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn remove_and_clear_drop_entries() {
        let cache = Shards::new(100);
        cache.insert(link("a"));
        cache.insert(link("b"));
        cache.remove("a");
        assert!(cache.get("a").is_none());
        assert_eq!(cache.get("b").unwrap().code(), "b");
        cache.clear();
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn sweep_drops_only_entries_unused_for_longer_than_the_ttl() {
        let mut cache = Shards::new(100);
        cache.insert(link("old"));
        cache.insert(link("read"));
        // Two seconds pass (moving the origin back ages every entry).
        cache.origin -= Duration::from_secs(2);
        assert!(cache.get("read").is_some());
        cache.insert(link("new"));
        cache.sweep(Duration::from_secs(1));
        assert!(cache.get("old").is_none());
        assert!(cache.get("read").is_some());
        assert!(cache.get("new").is_some());
        assert_eq!(cache.len(), 2);
        cache.insert(link("new"));
        assert_eq!(cache.len(), 2, "replacing an entry does not count it twice");
        cache.remove("new");
        cache.remove("new");
        assert_eq!(cache.len(), 1);
    }
}
