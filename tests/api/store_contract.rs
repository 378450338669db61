//! The store contract: the same behaviour from both backends, called through the `Store`
//! trait directly.

use crate::helpers::{Backend, RETENTION, RedisServer};
use crate::on_both_stores;
use akti_link::domain::{CampaignId, Destination, LinkPatch, NewLink, Phone, ShortCode};
use akti_link::store::{
    ClickCounts, ClickOutcome, Counted, LeadClick, LinkQuery, LinkStore, Store, StoreError,
    embedded::EmbeddedStore, redis::RedisStore,
};
use std::collections::HashSet;

/// A store of `backend` with whatever keeps it alive.
struct Fixture {
    store: Box<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    _redis: Option<RedisServer>,
}

fn open(backend: Backend) -> Fixture {
    match backend {
        Backend::Embedded => {
            let dir = tempfile::tempdir().unwrap();
            Fixture {
                store: Box::new(EmbeddedStore::open(dir.path(), RETENTION).unwrap()),
                _dir: Some(dir),
                _redis: None,
            }
        }
        Backend::Redis => {
            let redis = RedisServer::start();
            Fixture {
                store: Box::new(RedisStore::connect(&redis.url(), RETENTION).unwrap()),
                _dir: None,
                _redis: Some(redis),
            }
        }
    }
}

fn new_link(campaign: &str, phone: Option<&str>, url: &str) -> NewLink {
    NewLink {
        campaign_id: CampaignId::parse(campaign).unwrap(),
        phone: phone.map(|p| Phone::parse(p).unwrap()),
        external_lead_id: None,
        url: Destination::parse(url).unwrap(),
        code: None,
        expires_at: None,
    }
}

fn with_code(mut link: NewLink, code: &str) -> NewLink {
    link.code = Some(ShortCode::parse(code).unwrap());
    link
}

on_both_stores!(
    counters_of_many_links_add_up_in_one_write,
    a_batch_of_lead_clicks_is_judged_in_order,
    creation_is_idempotent_on_campaign_phone_and_url,
    generated_codes_have_the_requested_length,
    a_custom_code_of_another_link_is_taken,
    a_batch_keeps_its_order_and_resolves_repeats_to_one_link,
    updates_change_only_what_the_patch_names,
    an_update_cannot_take_another_links_identity,
    deleting_frees_the_identity_and_the_code,
    listing_pages_through_every_link_once,
    listing_filters_by_campaign_and_phone,
    a_foreign_cursor_is_refused,
    an_empty_batch_creates_nothing,
);

async fn an_empty_batch_creates_nothing(backend: Backend) {
    let f = open(backend);
    assert!(
        f.store
            .create_links(Vec::new(), 8)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn creation_is_idempotent_on_campaign_phone_and_url(backend: Backend) {
    let f = open(backend);
    let first = f
        .store
        .create_links(vec![new_link("c", Some("+155"), "https://a.test/")], 8)
        .await
        .unwrap();
    assert!(first[0].is_new);
    let again = f
        .store
        .create_links(vec![new_link("c", Some("+155"), "https://a.test/")], 8)
        .await
        .unwrap();
    assert!(!again[0].is_new);
    assert_eq!(again[0].link, first[0].link);
    // Any part of the identity that differs makes another link.
    for other in [
        new_link("d", Some("+155"), "https://a.test/"),
        new_link("c", Some("+156"), "https://a.test/"),
        new_link("c", None, "https://a.test/"),
        new_link("c", Some("+155"), "https://a.test/x"),
    ] {
        let created = f.store.create_links(vec![other], 8).await.unwrap();
        assert!(created[0].is_new);
        assert_ne!(created[0].link.code, first[0].link.code);
    }
    let found = f.store.get_link(&first[0].link.code).await.unwrap();
    assert_eq!(found.as_ref(), Some(&first[0].link));
}

async fn generated_codes_have_the_requested_length(backend: Backend) {
    let f = open(backend);
    let created = f
        .store
        .create_links(vec![new_link("c", None, "https://a.test/")], 13)
        .await
        .unwrap();
    assert_eq!(created[0].link.code.as_str().len(), 13);
}

async fn a_custom_code_of_another_link_is_taken(backend: Backend) {
    let f = open(backend);
    let mine = with_code(new_link("c", Some("+155"), "https://a.test/"), "promo");
    assert!(f.store.create_links(vec![mine.clone()], 8).await.unwrap()[0].is_new);
    // The same request again is the same link, not a conflict.
    assert!(!f.store.create_links(vec![mine], 8).await.unwrap()[0].is_new);
    let theirs = with_code(new_link("c", Some("+156"), "https://a.test/"), "promo");
    assert!(matches!(
        f.store.create_links(vec![theirs], 8).await,
        Err(StoreError::CodeTaken)
    ));
    let renamed = with_code(new_link("c", Some("+155"), "https://a.test/"), "other");
    assert!(matches!(
        f.store.create_links(vec![renamed], 8).await,
        Err(StoreError::IdentityTaken)
    ));
}

async fn a_batch_keeps_its_order_and_resolves_repeats_to_one_link(backend: Backend) {
    let f = open(backend);
    let existing = f
        .store
        .create_links(vec![new_link("c", Some("+1002"), "https://a.test/")], 8)
        .await
        .unwrap();
    let phones = ["+1001", "+1002", "+1003", "+1001"];
    let batch = phones
        .iter()
        .map(|p| new_link("c", Some(p), "https://a.test/"))
        .collect();
    let created = f.store.create_links(batch, 8).await.unwrap();
    let got: Vec<_> = created
        .iter()
        .map(|c| c.link.phone.as_ref().unwrap().as_str())
        .collect();
    assert_eq!(got, phones);
    assert_eq!(created[1].link.code, existing[0].link.code);
    assert!(!created[1].is_new);
    assert_eq!(created[0].link.code, created[3].link.code);
    assert_ne!(created[0].link.code, created[2].link.code);
}

async fn updates_change_only_what_the_patch_names(backend: Backend) {
    let f = open(backend);
    let mut new = new_link("c", Some("+155"), "https://a.test/");
    new.expires_at = Some(akti_link::domain::from_millis(4_000_000_000_000));
    let link = f
        .store
        .create_links(vec![new], 8)
        .await
        .unwrap()
        .remove(0)
        .link;
    let patch = LinkPatch {
        disabled: Some(true),
        ..Default::default()
    };
    let disabled = f
        .store
        .update_link(&link.code, &patch)
        .await
        .unwrap()
        .unwrap();
    assert!(disabled.disabled);
    assert_eq!(disabled.url, link.url);
    assert_eq!(disabled.expires_at, link.expires_at);
    let patch = LinkPatch {
        url: Some(Destination::parse("https://b.test/").unwrap()),
        expires_at: Some(None),
        ..Default::default()
    };
    let moved = f
        .store
        .update_link(&link.code, &patch)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved.url.as_str(), "https://b.test/");
    assert_eq!(moved.expires_at, None);
    assert!(moved.disabled);
    assert_eq!(
        f.store.get_link(&link.code).await.unwrap(),
        Some(moved.clone())
    );
    // The identity moved with the URL.
    let again = f
        .store
        .create_links(vec![new_link("c", Some("+155"), "https://b.test/")], 8)
        .await
        .unwrap();
    assert_eq!(again[0].link.code, link.code);
    let fresh = f
        .store
        .create_links(vec![new_link("c", Some("+155"), "https://a.test/")], 8)
        .await
        .unwrap();
    assert!(fresh[0].is_new);
    let missing = ShortCode::parse("nope").unwrap();
    assert!(
        f.store
            .update_link(&missing, &patch)
            .await
            .unwrap()
            .is_none()
    );
}

async fn an_update_cannot_take_another_links_identity(backend: Backend) {
    let f = open(backend);
    let batch = vec![
        new_link("c", Some("+155"), "https://a.test/"),
        new_link("c", Some("+155"), "https://b.test/"),
    ];
    let created = f.store.create_links(batch, 8).await.unwrap();
    let patch = LinkPatch {
        url: Some(Destination::parse("https://b.test/").unwrap()),
        ..Default::default()
    };
    let result = f.store.update_link(&created[0].link.code, &patch).await;
    assert!(
        matches!(result, Err(StoreError::IdentityTaken)),
        "{result:?}"
    );
    let unchanged = f
        .store
        .get_link(&created[0].link.code)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unchanged.url.as_str(), "https://a.test/");
}

async fn deleting_frees_the_identity_and_the_code(backend: Backend) {
    let f = open(backend);
    let new = with_code(new_link("c", Some("+155"), "https://a.test/"), "gone");
    let link = f
        .store
        .create_links(vec![new.clone()], 8)
        .await
        .unwrap()
        .remove(0)
        .link;
    assert!(f.store.delete_link(&link.code).await.unwrap());
    assert!(!f.store.delete_link(&link.code).await.unwrap());
    assert_eq!(f.store.get_link(&link.code).await.unwrap(), None);
    let page = f
        .store
        .list_links(&LinkQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(page.links.is_empty());
    let again = f.store.create_links(vec![new], 8).await.unwrap();
    assert!(again[0].is_new);
}

async fn listing_pages_through_every_link_once(backend: Backend) {
    let f = open(backend);
    let batch = (0..7)
        .map(|i| new_link("c", Some(&format!("+1{i:03}")), "https://a.test/"))
        .collect();
    let created = f.store.create_links(batch, 8).await.unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let query = LinkQuery {
            cursor: cursor.clone(),
            limit: 3,
            ..Default::default()
        };
        let page = f.store.list_links(&query).await.unwrap();
        assert!(page.links.len() <= 3);
        seen.extend(page.links.into_iter().map(|l| l.code));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    let unique: HashSet<_> = seen.iter().collect();
    let expected: HashSet<_> = created.iter().map(|c| &c.link.code).collect();
    assert_eq!(unique, expected);
}

async fn listing_filters_by_campaign_and_phone(backend: Backend) {
    let f = open(backend);
    let batch = vec![
        new_link("a", Some("+155"), "https://a.test/1"),
        new_link("a", Some("+166"), "https://a.test/2"),
        new_link("b", Some("+155"), "https://a.test/3"),
        new_link("a", Some("+155"), "https://a.test/4"),
    ];
    f.store.create_links(batch, 8).await.unwrap();
    let urls = |page: akti_link::store::LinkPage| -> HashSet<String> {
        page.links
            .iter()
            .map(|l| l.url.as_str().to_owned())
            .collect()
    };
    let campaign_a = LinkQuery {
        campaign_id: Some(CampaignId::parse("a").unwrap()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        urls(f.store.list_links(&campaign_a).await.unwrap()).len(),
        3
    );
    let phone = LinkQuery {
        phone: Some(Phone::parse("+155").unwrap()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(urls(f.store.list_links(&phone).await.unwrap()).len(), 3);
    let both = LinkQuery {
        phone: Some(Phone::parse("+155").unwrap()),
        campaign_id: Some(CampaignId::parse("a").unwrap()),
        limit: 1,
        ..Default::default()
    };
    let first = f.store.list_links(&both).await.unwrap();
    assert_eq!(first.links.len(), 1);
    let second = f
        .store
        .list_links(&LinkQuery {
            cursor: first.next_cursor.clone(),
            ..both.clone()
        })
        .await
        .unwrap();
    assert_eq!(second.next_cursor, None);
    let all: HashSet<String> = urls(first).union(&urls(second)).cloned().collect();
    assert_eq!(
        all,
        HashSet::from(["https://a.test/1".to_owned(), "https://a.test/4".to_owned()])
    );
}

async fn a_foreign_cursor_is_refused(backend: Backend) {
    let f = open(backend);
    let query = LinkQuery {
        cursor: Some("not a cursor".into()),
        limit: 10,
        ..Default::default()
    };
    assert!(matches!(
        f.store.list_links(&query).await,
        Err(StoreError::InvalidCursor)
    ));
}

on_both_stores!(the_delivery_log_pages_through_events_of_the_same_millisecond);

/// Many events of one millisecond, most of them filtered out: every page terminates and
/// each delivery appears exactly once.
async fn the_delivery_log_pages_through_events_of_the_same_millisecond(backend: Backend) {
    use akti_link::events::{Event, EventType};
    use akti_link::store::{DeliveryStatus, Subscription};
    let f = open(backend);
    let sub = Subscription {
        id: "sub_log".into(),
        url: "https://hooks.test/".into(),
        event_types: None,
        campaign_ids: None,
        description: None,
        secret: akti_link::dispatch::signing::new_secret(),
        created_at: akti_link::domain::now_millis(),
        disabled: false,
    };
    f.store.create_subscription(&sub).await.unwrap();
    let at = akti_link::domain::now_millis();
    let events: Vec<Event> = (0..250)
        .map(|i| Event {
            id: format!("evt_{i:04}"),
            event_type: EventType::LinkSent,
            campaign_id: CampaignId::parse("c").unwrap(),
            body: "{}".into(),
            created_at: at,
        })
        .collect();
    f.store.enqueue_events(&events).await.unwrap();
    let none = f
        .store
        .list_deliveries("sub_log", Some(DeliveryStatus::Delivered), None, 10)
        .await
        .unwrap();
    assert!(none.items.is_empty() && none.next_cursor.is_none());
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = f
            .store
            .list_deliveries(
                "sub_log",
                Some(DeliveryStatus::Pending),
                cursor.as_deref(),
                40,
            )
            .await
            .unwrap();
        seen.extend(page.items.into_iter().map(|d| d.event_id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(seen.len(), 250);
    assert_eq!(unique.len(), 250);
}

on_both_stores!(deliveries_of_a_disabled_subscription_are_released_as_failed);

/// Deliveries queued before their subscription was disabled are not handed out: the claim
/// releases them, all at once, and records them as failed (replayable).
async fn deliveries_of_a_disabled_subscription_are_released_as_failed(backend: Backend) {
    use akti_link::events::{Event, EventType};
    use akti_link::store::{DeliveryStatus, Subscription, SubscriptionPatch};
    use std::time::Duration;
    let f = open(backend);
    let sub = Subscription {
        id: "sub_off".into(),
        url: "https://hooks.test/".into(),
        event_types: None,
        campaign_ids: None,
        description: None,
        secret: akti_link::dispatch::signing::new_secret(),
        created_at: akti_link::domain::now_millis(),
        disabled: false,
    };
    f.store.create_subscription(&sub).await.unwrap();
    // More than one call of the outcome script holds (64).
    let events: Vec<Event> = (0..100)
        .map(|i| Event {
            id: format!("evt_{i:04}"),
            event_type: EventType::LinkSent,
            campaign_id: CampaignId::parse("c").unwrap(),
            body: "{}".into(),
            created_at: akti_link::domain::now_millis(),
        })
        .collect();
    f.store.enqueue_events(&events).await.unwrap();
    let off = SubscriptionPatch {
        disabled: Some(true),
        ..Default::default()
    };
    f.store.update_subscription("sub_off", &off).await.unwrap();

    let lease = Duration::from_secs(60);
    let claimed = f
        .store
        .claim_deliveries("test", 128, Duration::ZERO, lease)
        .await
        .unwrap();
    assert!(claimed.is_empty(), "{} handed out", claimed.len());
    let failed = f
        .store
        .list_deliveries("sub_off", Some(DeliveryStatus::Failed), None, 200)
        .await
        .unwrap();
    assert_eq!(failed.items.len(), 100);
    assert_eq!(f.store.queue_depth().await.unwrap().0, 0);
    let again = f
        .store
        .claim_deliveries("test", 128, Duration::ZERO, lease)
        .await
        .unwrap();
    assert!(again.is_empty());
}

on_both_stores!(an_outcome_written_twice_is_recorded_once);

/// The dispatcher writes outcomes again when a write timed out (and may have run): the
/// second write must not add the attempt again or schedule the retry twice.
async fn an_outcome_written_twice_is_recorded_once(backend: Backend) {
    use akti_link::events::{Event, EventType};
    use akti_link::store::{Attempt, DeliveryOutcome, Subscription};
    use std::time::Duration;
    let f = open(backend);
    let sub = Subscription {
        id: "sub_twice".into(),
        url: "https://hooks.test/".into(),
        event_types: None,
        campaign_ids: None,
        description: None,
        secret: akti_link::dispatch::signing::new_secret(),
        created_at: akti_link::domain::now_millis(),
        disabled: false,
    };
    f.store.create_subscription(&sub).await.unwrap();
    let event = Event {
        id: "evt_twice".into(),
        event_type: EventType::LinkSent,
        campaign_id: CampaignId::parse("c").unwrap(),
        body: "{}".into(),
        created_at: akti_link::domain::now_millis(),
    };
    f.store.enqueue_events(&[event]).await.unwrap();
    let lease = Duration::from_secs(60);
    let claimed = f
        .store
        .claim_deliveries("test", 10, Duration::ZERO, lease)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let attempt = Attempt {
        at: "2026-12-01T00:00:00.000Z".into(),
        status_code: Some(500),
        error: Some("HTTP 500".into()),
        duration_ms: 3,
    };
    let soon = akti_link::domain::now_millis() + chrono::Duration::milliseconds(50);
    let done = [(claimed[0].clone(), DeliveryOutcome::Retry(attempt, soon))];
    f.store.finish_deliveries(&done).await.unwrap();
    f.store.finish_deliveries(&done).await.unwrap();
    let log = f
        .store
        .list_deliveries("sub_twice", None, None, 10)
        .await
        .unwrap();
    assert_eq!(log.items[0].attempts.len(), 1, "one attempt recorded");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let due = f
        .store
        .claim_deliveries("test", 10, Duration::ZERO, lease)
        .await
        .unwrap();
    assert_eq!(due.len(), 1, "the retry is due once");
    assert_eq!(due[0].attempts_made, 1);
}

on_both_stores!(concurrent_creations_of_one_identity_make_one_link);

/// Racing creators of the same identity all get the same link, and exactly one of them
/// created it.
async fn concurrent_creations_of_one_identity_make_one_link(backend: Backend) {
    let f = open(backend);
    let store: std::sync::Arc<dyn Store> = std::sync::Arc::from(f.store);
    let racers: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .create_links(vec![new_link("c", Some("+155"), "https://race.test/")], 8)
                    .await
                    .unwrap()
                    .remove(0)
            })
        })
        .collect();
    let mut created = Vec::new();
    for racer in racers {
        created.push(racer.await.unwrap());
    }
    let codes: HashSet<&str> = created.iter().map(|c| c.link.code.as_str()).collect();
    assert_eq!(codes.len(), 1, "{codes:?}");
    assert_eq!(created.iter().filter(|c| c.is_new).count(), 1);
    let page = store
        .list_links(&LinkQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.links.len(), 1, "no orphan left in the index");
}

/// One write of counts for more links than one Redis script call takes (500 counters), so
/// that every counter on both sides of each call boundary must arrive, and twice, so that
/// the second write adds to the first.
async fn counters_of_many_links_add_up_in_one_write(backend: Backend) {
    let fixture = open(backend);
    let store = fixture.store.as_ref();
    let links = 1_234;
    let code = |i: usize| ShortCode::parse(&format!("count{i:05}")).unwrap();
    let campaign = |i: usize| CampaignId::parse(&format!("camp-{}", i % 3)).unwrap();
    let base = chrono::DateTime::from_timestamp_millis(1_790_000_000_000).unwrap();
    let at = |i: usize| base + chrono::Duration::milliseconds(i as i64);
    let mut counts = ClickCounts::default();
    for i in 0..links {
        // Link i: i % 4 bot clicks, and one human click when i is even.
        for _ in 0..i % 4 {
            counts.add(code(i).as_str(), &campaign(i), Counted::Bot, at(i));
        }
        if i % 2 == 0 {
            counts.add(
                code(i).as_str(),
                &campaign(i),
                Counted::HumanWithEvent,
                at(i),
            );
        }
    }
    store.add_click_counts("batch-1", &counts).await.unwrap();
    store.add_click_counts("batch-2", &counts).await.unwrap();
    // A batch written again under its name (a retry after a timeout) adds nothing.
    store.add_click_counts("batch-1", &counts).await.unwrap();

    for i in [0, 1, 2, 3, 498, 499, 500, 501, 999, 1000, 1233] {
        let stats = store.link_stats(&code(i)).await.unwrap();
        assert_eq!(stats.bot_clicks, 2 * (i % 4) as u64, "link {i}");
        let human = 2 * u64::from(i % 2 == 0);
        assert_eq!(stats.clicks, human, "link {i}");
        assert_eq!(stats.click_events, human, "link {i}");
        let last = (i % 2 == 0).then(|| at(i));
        assert_eq!(stats.last_clicked_at, last, "link {i}");
    }
    for c in 0..3 {
        let (_, stats) = store.campaign_stats(&campaign(c)).await.unwrap();
        let members = (0..links).filter(|i| i % 3 == c);
        let bots: u64 = members.clone().map(|i| 2 * (i % 4) as u64).sum();
        let human = 2 * members.clone().filter(|i| i % 2 == 0).count() as u64;
        let last = members.filter(|i| i % 2 == 0).map(at).max();
        assert_eq!(stats.bot_clicks, bots, "campaign {c}");
        assert_eq!(
            (stats.clicks, stats.click_events),
            (human, human),
            "campaign {c}"
        );
        assert_eq!(stats.last_clicked_at, last, "campaign {c}");
    }
}

/// More clicks than one Redis script call takes (64), with repeats of the same leads later
/// in the same batch: each answer must be the one for its own click, in order.
async fn a_batch_of_lead_clicks_is_judged_in_order(backend: Backend) {
    use akti_link::events::{Event, EventType};
    use akti_link::store::Subscription;
    let fixture = open(backend);
    let store = fixture.store.as_ref();
    let sub = Subscription {
        id: "sub_batch".into(),
        url: "https://hooks.test/".into(),
        event_types: None,
        campaign_ids: None,
        description: None,
        secret: akti_link::dispatch::signing::new_secret(),
        created_at: akti_link::domain::now_millis(),
        disabled: false,
    };
    store.create_subscription(&sub).await.unwrap();
    // Recent, so that the retention sweep leaves its deliveries alone.
    let base = akti_link::domain::now_millis();
    let click = |lead: usize, ms: i64| {
        let at = base + chrono::Duration::milliseconds(ms);
        LeadClick {
            code: ShortCode::parse(&format!("lead{lead:04}")).unwrap(),
            campaign_id: CampaignId::parse("batch").unwrap(),
            at,
            event: Event {
                id: format!("evt_batch_{lead}_{ms}"),
                event_type: EventType::LinkClicked,
                campaign_id: CampaignId::parse("batch").unwrap(),
                body: "{}".into(),
                created_at: at,
            },
            window: std::time::Duration::from_secs(30),
        }
    };
    // Leads 0..100 click at 0..100 ms; then leads 0..50 again, 10 s later: in the window.
    let clicks: Vec<LeadClick> = (0..100)
        .map(|lead| click(lead, lead as i64))
        .chain((0..50).map(|lead| click(lead, 10_000 + lead as i64)))
        .collect();
    let outcomes = store.record_lead_clicks(&clicks).await.unwrap();
    assert_eq!(outcomes.len(), clicks.len());
    for (i, outcome) in outcomes.iter().enumerate() {
        let expected = if i < 100 {
            ClickOutcome::Emitted
        } else {
            ClickOutcome::Deduplicated {
                window_opened_at: clicks[i - 100].at,
            }
        };
        assert_eq!(*outcome, expected, "click {i}");
    }
    // The same batch written again (a retry after a timeout whose write went through):
    // each click finds its own window and answers as before.
    let (queued, _) = store.queue_depth().await.unwrap();
    assert_eq!(queued, 100, "one delivery per click that opened a window");
    let again = store.record_lead_clicks(&clicks).await.unwrap();
    assert_eq!(again, outcomes, "a retried batch answers as the first time");
    let (queued, _) = store.queue_depth().await.unwrap();
    assert_eq!(queued, 100, "and queues nothing twice");
    // A later batch: lead 0 after its window (emits), lead 1 inside it (does not).
    let later = [click(0, 30_000), click(1, 29_000)];
    let outcomes = store.record_lead_clicks(&later).await.unwrap();
    assert_eq!(
        outcomes,
        [
            ClickOutcome::Emitted,
            ClickOutcome::Deduplicated {
                window_opened_at: clicks[1].at
            }
        ]
    );
}

/// Creation on Redis claims a code, binds the identity, then indexes and persists the link:
/// when it fails in between (a crash, or here an index key of the wrong type), the claimed
/// record must not stay for good, and the next creation of that identity finishes it.
#[tokio::test]
async fn a_creation_that_stops_half_way_is_finished_by_the_next_or_expires() {
    let redis = RedisServer::start();
    let store = RedisStore::connect(&redis.url(), RETENTION).unwrap();
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let command = |args: &[&str]| {
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        cmd
    };
    let phone_index = "akti:index:phone:{+14155550100}";
    command(&["SET", phone_index, "not a sorted set"])
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let link = || new_link("c", Some("+14155550100"), "https://a.test/");
    assert!(store.create_links(vec![link()], 8).await.is_err());
    let keys: Vec<String> = command(&["KEYS", "akti:link:*"])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "the claimed record");
    let ttl: i64 = command(&["PTTL", &keys[0]])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0, "it would expire by itself (PTTL {ttl})");

    command(&["DEL", phone_index])
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let again = store.create_links(vec![link()], 8).await.unwrap();
    assert!(!again[0].is_new, "the link the first call made");
    assert_eq!(format!("akti:link:{{{}}}", again[0].link.code), keys[0]);
    let ttl: i64 = command(&["PTTL", &keys[0]])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(ttl, -1, "finished: it no longer expires");
    let query = LinkQuery {
        phone: Some(Phone::parse("+14155550100").unwrap()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(store.list_links(&query).await.unwrap().links.len(), 1);
}
