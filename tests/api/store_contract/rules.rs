//! The decisions a backend takes inside its own transaction or script, held to the cases
//! of `domain::rules`: the Redis script and the SQLite code must decide as the Rust rule.

use super::{open, subscription};
use crate::helpers::Backend;
use crate::on_every_store;
use akti_link::domain::rules::{WINDOW_CASES, WindowDecision};
use akti_link::domain::{
    CampaignId, ClickOutcome, Event, EventId, EventType, LeadClick, ShortCode, from_millis,
    now_millis,
};
use std::time::Duration;

on_every_store!(the_window_is_decided_as_the_rule_says);

fn click(code: &str, at: i64, event: &str) -> LeadClick {
    let at = from_millis(at);
    LeadClick {
        code: ShortCode::parse(code).unwrap(),
        campaign_id: CampaignId::parse("rules").unwrap(),
        at,
        os: akti_link::domain::analytics::Os::Other,
        event: Event {
            id: EventId::from_trusted(event.into()),
            event_type: EventType::LinkClicked,
            campaign_id: CampaignId::parse("rules").unwrap(),
            body: "{}".into(),
            created_at: at,
        },
    }
}

async fn the_window_is_decided_as_the_rule_says(backend: Backend) {
    let f = open(backend);
    f.store
        .create_subscription(&subscription("sub_rules"))
        .await
        .unwrap();
    let window = Duration::from_secs(30);
    // Recent times, so that nothing has expired by the store's clock.
    let base = now_millis().timestamp_millis();
    for (i, (found, at, event, expected)) in WINDOW_CASES.into_iter().enumerate() {
        let code = format!("rule{i}");
        if let Some((opened_at, by)) = found {
            let opened = f
                .store
                .record_lead_clicks(&[click(&code, base + opened_at, by)], window)
                .await
                .unwrap();
            assert_eq!(
                opened,
                [ClickOutcome::Emitted],
                "case {i}: the window opens"
            );
        }
        let queued_before = f.store.queue_depth().await.unwrap().pending;
        let answer = f
            .store
            .record_lead_clicks(&[click(&code, base + at, event)], window)
            .await
            .unwrap();
        let queued = f.store.queue_depth().await.unwrap().pending - queued_before;
        let decided = match (answer[0], queued) {
            (ClickOutcome::Emitted, 1) => WindowDecision::Opens,
            (ClickOutcome::Emitted, 0) => WindowDecision::AlreadyOpened,
            (ClickOutcome::Deduplicated { window_opened_at }, 0) => WindowDecision::Inside {
                opened_at: window_opened_at.timestamp_millis() - base,
            },
            other => panic!("case {i}: {other:?}"),
        };
        assert_eq!(decided, expected, "case {i}");
    }
}
