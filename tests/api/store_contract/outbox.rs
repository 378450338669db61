//! The outbox: claims, outcomes and the delivery log.

use super::{open, subscription};
use crate::helpers::Backend;
use crate::on_every_store;
use akti_link::domain::{CampaignId, Position};
use std::collections::HashSet;

on_every_store!(
    the_delivery_log_pages_through_events_of_the_same_millisecond,
    deliveries_of_a_disabled_subscription_are_released_as_failed,
    an_outcome_written_twice_is_recorded_once,
    send_slots_follow_the_rate_rule,
);

/// Both stores hand out send slots as `rules::take_slots` says (the cases a few
/// milliseconds apart, well inside one window).
async fn send_slots_follow_the_rate_rule(backend: Backend) {
    use akti_link::domain::SubscriptionId;
    use akti_link::domain::rules::RATE_WINDOW_MS;
    let f = open(backend);
    let (a, b) = (
        SubscriptionId::from_trusted("sub_a".into()),
        SubscriptionId::from_trusted("sub_b".into()),
    );
    let first = f.store.take_send_slots(&a, 50, 30).await.unwrap();
    assert_eq!((first.granted, first.next_free_in), (30, 0));
    let second = f.store.take_send_slots(&a, 50, 30).await.unwrap();
    assert_eq!(second.granted, 20);
    assert!(
        (1..=RATE_WINDOW_MS).contains(&second.next_free_in),
        "{second:?}"
    );
    assert_eq!(f.store.take_send_slots(&a, 50, 1).await.unwrap().granted, 0);
    // A lower limit grants nothing while the window holds more; other subscriptions have
    // their own slots.
    assert_eq!(f.store.take_send_slots(&a, 10, 1).await.unwrap().granted, 0);
    assert_eq!(
        f.store.take_send_slots(&b, 10, 12).await.unwrap().granted,
        10
    );
}

/// Many events of one millisecond, most of them filtered out: every page terminates and
/// each delivery appears exactly once.
async fn the_delivery_log_pages_through_events_of_the_same_millisecond(backend: Backend) {
    use akti_link::domain::DeliveryStatus;
    use akti_link::domain::{Event, EventId, EventType};
    let f = open(backend);
    let sub = subscription("sub_log");
    f.store.create_subscription(&sub).await.unwrap();
    let at = akti_link::domain::now_millis();
    let events: Vec<Event> = (0..250)
        .map(|i| Event {
            id: EventId::from_trusted(format!("evt_{i:04}")),
            event_type: EventType::LinkSent,
            campaign_id: CampaignId::parse("c").unwrap(),
            body: "{}".into(),
            created_at: at,
        })
        .collect();
    f.store.enqueue_events(&events).await.unwrap();
    let none = f
        .store
        .list_deliveries(&sub.id, Some(DeliveryStatus::Delivered), None, 10)
        .await
        .unwrap();
    assert!(none.items.is_empty() && none.next_cursor.is_none());
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = f
            .store
            .list_deliveries(
                &sub.id,
                Some(DeliveryStatus::Pending),
                cursor.as_deref().and_then(Position::parse),
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
    let unique: HashSet<&EventId> = seen.iter().collect();
    assert_eq!(seen.len(), 250);
    assert_eq!(unique.len(), 250);
}

/// Deliveries queued before their subscription was disabled are not handed out: the claim
/// releases them, all at once, and records them as failed (replayable).
async fn deliveries_of_a_disabled_subscription_are_released_as_failed(backend: Backend) {
    use akti_link::domain::{DeliveryStatus, SubscriptionPatch};
    use akti_link::domain::{Event, EventId, EventType};
    use std::time::Duration;
    let f = open(backend);
    let sub = subscription("sub_off");
    f.store.create_subscription(&sub).await.unwrap();
    // More than one call of the outcome script holds (64).
    let events: Vec<Event> = (0..100)
        .map(|i| Event {
            id: EventId::from_trusted(format!("evt_{i:04}")),
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
    f.store.update_subscription(&sub.id, &off).await.unwrap();

    let lease = Duration::from_secs(60);
    let claimed = f
        .store
        .claim_deliveries("test", 128, Duration::ZERO, lease)
        .await
        .unwrap();
    assert!(claimed.is_empty(), "{} handed out", claimed.len());
    let failed = f
        .store
        .list_deliveries(&sub.id, Some(DeliveryStatus::Failed), None, 200)
        .await
        .unwrap();
    assert_eq!(failed.items.len(), 100);
    assert_eq!(f.store.queue_depth().await.unwrap().pending, 0);
    let again = f
        .store
        .claim_deliveries("test", 128, Duration::ZERO, lease)
        .await
        .unwrap();
    assert!(again.is_empty());
}

/// The dispatcher writes outcomes again when a write timed out (and may have run): the
/// second write must not add the attempt again or schedule the retry twice.
async fn an_outcome_written_twice_is_recorded_once(backend: Backend) {
    use akti_link::domain::{Attempt, DeliveryOutcome};
    use akti_link::domain::{Event, EventId, EventType};
    use std::time::Duration;
    let f = open(backend);
    let sub = subscription("sub_twice");
    f.store.create_subscription(&sub).await.unwrap();
    let event = Event {
        id: EventId::from_trusted("evt_twice".into()),
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
        at: akti_link::domain::from_millis(1_796_083_200_000),
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
        .list_deliveries(&sub.id, None, None, 10)
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
    assert_eq!(due[0].task.attempts_made, 1);
}

/// On Redis a claim reads every partition: a delivery queued in a quiet partition is
/// handed out in the first claim even behind a backlog in another one (on SQLite, where
/// a claim takes the oldest due deliveries, it would wait its turn).
async fn a_backlog_in_one_partition_does_not_hold_up_another(backend: Backend) {
    use akti_link::domain::{Event, EventId, EventType};
    use akti_link::store::redis::keys::Partition;
    use std::time::Duration;
    let f = open(backend);
    let sub = subscription("sub_fair");
    f.store.create_subscription(&sub).await.unwrap();
    let busy = Partition::of("evt_busy_0");
    let ids = (0..).map(|i| format!("evt_busy_{i}"));
    let mut backlog: Vec<String> = ids
        .filter(|id| Partition::of(id) == busy)
        .take(300)
        .collect();
    let quiet = (0..)
        .map(|i| format!("evt_quiet_{i}"))
        .find(|id| Partition::of(id) != busy)
        .unwrap();
    backlog.push(quiet.clone());
    let at = akti_link::domain::now_millis();
    let events: Vec<Event> = (backlog.iter())
        .map(|id| Event {
            id: EventId::from_trusted(id.clone()),
            event_type: EventType::LinkSent,
            campaign_id: CampaignId::parse("c").unwrap(),
            body: "{}".into(),
            created_at: at,
        })
        .collect();
    // The backlog first, the quiet partition's event last.
    f.store.enqueue_events(&events[..300]).await.unwrap();
    f.store.enqueue_events(&events[300..]).await.unwrap();
    let lease = Duration::from_secs(60);
    let claimed = (f.store)
        .claim_deliveries("fair", 32, Duration::ZERO, lease)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 32, "the room is filled from the backlog");
    assert!(
        claimed.iter().any(|l| l.task.event_id.as_str() == quiet),
        "the quiet partition's delivery waits behind the backlog"
    );
}

mod fairness {
    #[tokio::test]
    async fn redis() {
        super::a_backlog_in_one_partition_does_not_hold_up_another(crate::helpers::Backend::Redis)
            .await
    }
    #[tokio::test]
    async fn cluster() {
        super::a_backlog_in_one_partition_does_not_hold_up_another(crate::helpers::Backend::Cluster)
            .await
    }
}

/// A partition's copy of the subscription filters that went missing (a write that failed
/// half-way, a partition that lost its data) is put back by the reconciliation.
#[tokio::test]
async fn a_lost_filter_copy_is_put_back() {
    use akti_link::store::SubscriptionStore;
    use akti_link::store::redis::RedisStore;
    use akti_link::store::redis::keys::Partition;
    let redis = crate::helpers::RedisServer::start();
    let store = RedisStore::connect(&redis.url(), crate::helpers::RETENTION, 0).unwrap();
    let sub = subscription("sub_copy");
    store.create_subscription(&sub).await.unwrap();
    let copy = Partition::from_index(7).unwrap().sub_filters();
    let read = || {
        redis
            .command(&["HGET", &copy, "sub_copy"])
            .trim()
            .to_owned()
    };
    assert_eq!(read(), sub.filter.encode(false), "written at creation");
    redis.command(&["HDEL", &copy, "sub_copy"]);
    assert_eq!(read(), "");
    store.reconcile_filter_copies().await.unwrap();
    assert_eq!(read(), sub.filter.encode(false));
}
