//! The redirect cache and the change feed that keeps it true (Redis: the store other
//! instances share), called directly so that each rule is seen on its own.

use crate::helpers::{RETENTION, RedisServer};
use akti_link::cache::{LinkCache, TRUST_FOR};
use akti_link::domain::{CampaignId, Destination, LinkPatch, NewLink, Routing, ShortCode};
use akti_link::store::{ChangeFeed, FeedListener, LinkChange, Store, redis::RedisStore};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

async fn create(store: &dyn Store, url: &str) -> ShortCode {
    let new = NewLink {
        campaign_id: CampaignId::parse("c").unwrap(),
        phone: None,
        external_lead_id: None,
        url: Destination::parse(url).unwrap(),
        code: None,
        expires_at: None,
        routing: Routing::default(),
    };
    store
        .create_links(vec![new], 8)
        .await
        .unwrap()
        .remove(0)
        .link
        .code
}

/// Changes the link in the store without telling anyone: what a missed message looks like.
async fn change_silently(store: &dyn Store, code: &ShortCode, url: &str) {
    let patch = LinkPatch {
        url: Some(Destination::parse(url).unwrap()),
        ..Default::default()
    };
    store.update_link(code, &patch).await.unwrap().unwrap();
}

async fn served_url(cache: &LinkCache, code: &ShortCode) -> String {
    let entry = cache.lookup(code.as_str()).await.unwrap().unwrap();
    entry.url().to_owned()
}

/// A Redis store with one link, and a cache (TTL far beyond the test) that has served it.
async fn cached_link(follows_feed: bool) -> (RedisServer, Arc<RedisStore>, LinkCache, ShortCode) {
    let redis = RedisServer::start();
    let store = Arc::new(RedisStore::connect(&redis.url(), RETENTION, 0).unwrap());
    let cache = LinkCache::new(
        store.clone(),
        1_000,
        Duration::from_secs(3600),
        follows_feed,
        Arc::default(),
    );
    let code = create(store.as_ref(), "https://one.test/").await;
    assert_eq!(served_url(&cache, &code).await, "https://one.test/");
    (redis, store, cache, code)
}

#[tokio::test]
async fn cached_links_are_served_only_while_the_feed_confirms_it_is_caught_up() {
    let (redis, store, cache, code) = cached_link(true).await;

    // No confirmation yet: a cached link is read again, so a missed change is seen.
    change_silently(store.as_ref(), &code, "https://two.test/").await;
    assert_eq!(served_url(&cache, &code).await, "https://two.test/");

    // Confirmed: the cache answers by itself (a silent change is not seen; the feed would
    // have carried a real one).
    cache.caught_up(Instant::now());
    change_silently(store.as_ref(), &code, "https://three.test/").await;
    assert_eq!(served_url(&cache, &code).await, "https://two.test/");

    // The confirmation grows old: back to the store.
    tokio::time::sleep(TRUST_FOR + Duration::from_millis(200)).await;
    assert_eq!(served_url(&cache, &code).await, "https://three.test/");

    // Unconfirmed and the store down: the cached link keeps redirecting.
    drop(redis);
    assert_eq!(served_url(&cache, &code).await, "https://three.test/");
}

#[tokio::test]
async fn a_cache_without_a_feed_trusts_its_entries() {
    let (_redis, store, cache, code) = cached_link(false).await;
    change_silently(store.as_ref(), &code, "https://two.test/").await;
    assert_eq!(served_url(&cache, &code).await, "https://one.test/");
}

#[tokio::test]
async fn the_feed_confirms_only_after_delivering_what_was_published_before() {
    let redis = RedisServer::start();
    let store = RedisStore::connect(&redis.url(), RETENTION, 0).unwrap();
    let heard = Arc::new(Heard::default());
    let seen = heard.clone();
    let shutdown = CancellationToken::new();
    store.watch(heard, shutdown.clone());
    let confirmed_after = |since: Instant| {
        let seen = seen.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let position = (seen.0.lock().unwrap().iter())
                    .position(|c| matches!(c, Said::CaughtUp(at) if *at >= since));
                if let Some(position) = position {
                    return position;
                }
                assert!(Instant::now() < deadline, "no confirmation after {since:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    // Subscribed (the first thing said is to drop everything), then confirmed.
    confirmed_after(Instant::now()).await;
    assert_eq!(seen.0.lock().unwrap()[0], Said::Changed(LinkChange::All));

    let code = ShortCode::parse("changed1").unwrap();
    store
        .announce(&LinkChange::One(code.clone()))
        .await
        .unwrap();
    let announced = Instant::now();
    let confirmation = confirmed_after(announced).await;
    let change = (seen.0.lock().unwrap().iter())
        .position(|c| *c == Said::Changed(LinkChange::One(code.clone())));
    assert!(
        change.is_some_and(|change| change < confirmation),
        "the change must come before the confirmation that covers it"
    );
    shutdown.cancel();
}

/// What the feed said, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Said {
    Changed(LinkChange),
    CaughtUp(Instant),
}

#[derive(Default)]
struct Heard(Mutex<Vec<Said>>);

impl FeedListener for Heard {
    fn changed(&self, change: LinkChange) {
        self.0.lock().unwrap().push(Said::Changed(change));
    }

    fn caught_up(&self, at: Instant) {
        self.0.lock().unwrap().push(Said::CaughtUp(at));
    }
}
