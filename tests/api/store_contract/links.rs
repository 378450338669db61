//! Links: creation and its idempotency, changes, deletion, lists.

use super::{new_link, open, with_code};
use crate::helpers::{Backend, RETENTION, RedisServer};
use crate::on_every_store;
use akti_link::domain::{CampaignId, Destination, LinkPatch, Phone, Position, ShortCode};
use akti_link::store::redis::RedisStore;
use akti_link::store::{LinkQuery, LinkStore, Store, StoreError};
use std::collections::HashSet;

on_every_store!(
    creation_is_idempotent_on_campaign_phone_and_url,
    generated_codes_have_the_requested_length,
    a_custom_code_of_another_link_is_taken,
    a_batch_keeps_its_order_and_resolves_repeats_to_one_link,
    updates_change_only_what_the_patch_names,
    an_update_cannot_take_another_links_identity,
    deleting_frees_the_identity_and_the_code,
    listing_pages_through_every_link_once,
    listing_keeps_order_when_most_links_share_a_partition,
    listing_filters_by_campaign_and_phone,
    an_empty_batch_creates_nothing,
    concurrent_creations_of_one_identity_make_one_link,
    any_cursor_is_a_place_in_the_list,
);

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
    assert!(page.items.is_empty());
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
            after: cursor
                .as_deref()
                .and_then(Position::parse)
                .unwrap_or_else(Position::start),
            limit: 3,
            ..Default::default()
        };
        let page = f.store.list_links(&query).await.unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.into_iter().map(|l| l.code));
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

/// Redis keeps a campaign's index in parts by the code's partition and reads each part a
/// share of the page at a time; codes chosen into one partition make that part hold far
/// more than its share of every page. Every store must still list each link once, in
/// order of creation (and of code within one batch).
async fn listing_keeps_order_when_most_links_share_a_partition(backend: Backend) {
    use akti_link::store::redis::keys::Partition;
    let f = open(backend);
    let crowded = (0..)
        .map(|i| format!("crowd{i:04}"))
        .filter(|code| Partition::of(code).index() == 3)
        .take(120);
    let batch = (crowded.enumerate())
        .map(|(i, code)| {
            let link = new_link("c", Some(&format!("+1{i:03}")), "https://a.test/");
            with_code(link, &code)
        })
        .chain((0..30).map(|i| new_link("c", Some(&format!("+2{i:03}")), "https://a.test/")))
        .collect();
    let mut created: Vec<_> = (f.store.create_links(batch, 8).await.unwrap())
        .into_iter()
        .map(|c| c.link)
        .collect();
    created.sort_by(|a, b| (a.created_at, a.code.as_str()).cmp(&(b.created_at, b.code.as_str())));
    let (mut seen, mut after) = (Vec::new(), Position::start());
    loop {
        let query = LinkQuery {
            campaign_id: Some(CampaignId::parse("c").unwrap()),
            after,
            limit: 100,
            ..Default::default()
        };
        let page = f.store.list_links(&query).await.unwrap();
        seen.extend(page.items.into_iter().map(|l| l.code));
        match page.next_cursor.as_deref().and_then(Position::parse) {
            Some(next) => after = next,
            None => break,
        }
    }
    let expected: Vec<_> = created.into_iter().map(|l| l.code).collect();
    assert_eq!(seen, expected);
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
    let urls = |page: akti_link::domain::Page<akti_link::domain::Link>| -> HashSet<String> {
        page.items
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
    assert_eq!(first.items.len(), 1);
    let second = f
        .store
        .list_links(&LinkQuery {
            after: first
                .next_cursor
                .as_deref()
                .and_then(Position::parse)
                .unwrap(),
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
    assert_eq!(page.items.len(), 1, "no orphan left in the index");
}

/// Creation on Redis claims a code, binds the identity, then indexes and persists the link:
/// when it fails in between (a crash, or here an index key of the wrong type), the claimed
/// record must not stay for good, and the next creation of that identity finishes it.
#[tokio::test]
async fn a_creation_that_stops_half_way_is_finished_by_the_next_or_expires() {
    let redis = RedisServer::start();
    let store = RedisStore::connect(&redis.url(), RETENTION, 0).unwrap();
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
    assert_eq!(store.list_links(&query).await.unwrap().items.len(), 1);
}

async fn any_cursor_is_a_place_in_the_list(backend: Backend) {
    let f = open(backend);
    let batch = (0..4)
        .map(|i| new_link("c", Some(&format!("+1{i:03}")), "https://a.test/"))
        .collect();
    let created = f.store.create_links(batch, 8).await.unwrap();
    let mut positions: Vec<Position> = (created.iter())
        .map(|c| Position::of(&c.link.created_at, c.link.code.as_str()))
        .collect();
    positions.sort_by(|a, b| (a.ms, &a.id).cmp(&(b.ms, &b.id)));
    // Just after the second link, though no page ever ended there: the last two.
    let after = Position {
        id: format!("{}0", positions[1].id),
        ..positions[1].clone()
    };
    let query = LinkQuery {
        after,
        limit: 10,
        ..Default::default()
    };
    let rest: Vec<String> = (f.store.list_links(&query).await.unwrap().items.iter())
        .map(|l| l.code.to_string())
        .collect();
    let expected: Vec<String> = positions[2..].iter().map(|p| p.id.clone()).collect();
    assert_eq!(rest, expected);
}
