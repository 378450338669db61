//! Clicks and counters.

use super::{open, subscription};
use crate::helpers::Backend;
use crate::on_every_store;
use akti_link::domain::analytics::{Os, Tier};
use akti_link::domain::{CampaignId, ClickCounts, ClickOutcome, Counted, LeadClick, ShortCode};
use std::time::Duration;

const WINDOW: Duration = Duration::from_secs(30);

on_every_store!(
    counters_of_many_links_add_up_in_one_write,
    a_batch_of_lead_clicks_is_judged_in_order,
);

/// One write of counts for more links than one Redis script call takes (500 counters), so
/// that every counter on both sides of each call boundary must arrive, and twice, so that
/// the second write adds to the first.
async fn counters_of_many_links_add_up_in_one_write(backend: Backend) {
    let fixture = open(backend);
    let store = fixture.store.as_ref();
    let links = 1_234;
    let code = |i: usize| ShortCode::parse(&format!("count{i:05}")).unwrap();
    let campaign = |i: usize| CampaignId::parse(&format!("camp-{}", i % 3)).unwrap();
    // Recent: minute buckets older than two days are forgotten (the sweep may run).
    let base = akti_link::domain::now_millis() - chrono::Duration::minutes(10);
    let at = |i: usize| base + chrono::Duration::milliseconds(i as i64);
    let mut counts = ClickCounts::default();
    for i in 0..links {
        // Link i: i % 4 bot clicks, and one human click when i is even.
        for _ in 0..i % 4 {
            counts.add(
                code(i).as_str(),
                &campaign(i),
                Counted::Bot,
                Os::Other,
                at(i),
            );
        }
        if i % 2 == 0 {
            counts.add(
                code(i).as_str(),
                &campaign(i),
                Counted::HumanWithEvent,
                Os::Android,
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
        let stats = store.campaign_totals(&campaign(c)).await.unwrap().stats;
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
        // The series has the same clicks, once per write, and each link clicked once.
        let (from, end) = (
            at(0).timestamp_millis() - 3_600_000,
            at(links).timestamp_millis() + 3_600_000,
        );
        for tier in [Tier::Minute, Tier::Quarter] {
            let buckets = store
                .campaign_series(&campaign(c), tier, from, end)
                .await
                .unwrap();
            let sum = |f: fn(&akti_link::domain::analytics::BucketCounts) -> u64| {
                buckets.iter().map(|(_, b)| f(b)).sum::<u64>()
            };
            assert_eq!(sum(|b| b.bot_clicks), bots, "campaign {c} {tier:?}");
            assert_eq!(sum(|b| b.clicks), human, "campaign {c} {tier:?}");
            assert_eq!(sum(|b| b.unique_clicks), human / 2, "campaign {c} {tier:?}");
            assert_eq!(
                sum(|b| b.os[Os::Android.index()]),
                human,
                "campaign {c} {tier:?}"
            );
        }
    }
}

/// More clicks than one Redis script call takes (64), with repeats of the same leads later
/// in the same batch: each answer must be the one for its own click, in order.
async fn a_batch_of_lead_clicks_is_judged_in_order(backend: Backend) {
    use akti_link::domain::{Event, EventId, EventType};
    let fixture = open(backend);
    let store = fixture.store.as_ref();
    let sub = subscription("sub_batch");
    store.create_subscription(&sub).await.unwrap();
    // Recent, so that the retention sweep leaves its deliveries alone.
    let base = akti_link::domain::now_millis();
    let click = |lead: usize, ms: i64| {
        let at = base + chrono::Duration::milliseconds(ms);
        LeadClick {
            code: ShortCode::parse(&format!("lead{lead:04}")).unwrap(),
            campaign_id: CampaignId::parse("batch").unwrap(),
            at,
            os: Os::Ios,
            event: Event {
                id: EventId::from_trusted(format!("evt_batch_{lead}_{ms}")),
                event_type: EventType::LinkClicked,
                campaign_id: CampaignId::parse("batch").unwrap(),
                body: "{}".into(),
                created_at: at,
            },
        }
    };
    // Leads 0..100 click at 0..100 ms; then leads 0..50 again, 10 s later: in the window.
    let clicks: Vec<LeadClick> = (0..100)
        .map(|lead| click(lead, lead as i64))
        .chain((0..50).map(|lead| click(lead, 10_000 + lead as i64)))
        .collect();
    let outcomes = store.record_lead_clicks(&clicks, WINDOW).await.unwrap();
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
    let queued = store.queue_depth().await.unwrap().pending;
    assert_eq!(queued, 100, "one delivery per click that opened a window");
    let again = store.record_lead_clicks(&clicks, WINDOW).await.unwrap();
    assert_eq!(again, outcomes, "a retried batch answers as the first time");
    let queued = store.queue_depth().await.unwrap().pending;
    assert_eq!(queued, 100, "and queues nothing twice");
    // A later batch: lead 0 after its window (emits), lead 1 inside it (does not).
    let later = [click(0, 30_000), click(1, 29_000)];
    let outcomes = store.record_lead_clicks(&later, WINDOW).await.unwrap();
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

/// A file written before links kept their first click and delivery time opens with those
/// columns added, and its counters intact.
#[tokio::test]
async fn an_embedded_file_of_an_earlier_version_gets_the_new_columns() {
    use akti_link::store::ClickStore;
    use akti_link::store::embedded::EmbeddedStore;
    let dir = tempfile::tempdir().unwrap();
    let old = rusqlite::Connection::open(dir.path().join("akti-link.sqlite3")).unwrap();
    old.execute_batch(
        "CREATE TABLE link_stats (code TEXT PRIMARY KEY, clicks INTEGER NOT NULL DEFAULT 0, \
           click_events INTEGER NOT NULL DEFAULT 0, bot_clicks INTEGER NOT NULL DEFAULT 0, \
           last_clicked_at INTEGER); \
         INSERT INTO link_stats VALUES ('abc12345', 3, 1, 2, 1700000000000);",
    )
    .unwrap();
    drop(old);
    let store = EmbeddedStore::open(dir.path(), crate::helpers::RETENTION).unwrap();
    let code = ShortCode::parse("abc12345").unwrap();
    let stats = store.link_stats(&code).await.unwrap();
    assert_eq!(
        (stats.clicks, stats.click_events, stats.bot_clicks),
        (3, 1, 2)
    );
    assert_eq!(stats.first_clicked_at, None);
    let mut counts = ClickCounts::default();
    let campaign = CampaignId::parse("c").unwrap();
    let at = akti_link::domain::from_millis(1_700_000_100_000);
    counts.add(code.as_str(), &campaign, Counted::Human, Os::Ios, at);
    store.add_click_counts("b1", &counts).await.unwrap();
    let stats = store.link_stats(&code).await.unwrap();
    assert_eq!(stats.clicks, 4);
    assert_eq!(stats.first_clicked_at, Some(at));
}
