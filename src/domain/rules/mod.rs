//! The decisions both stores take, written once. Each store calls these; where a decision
//! must be taken atomically inside Redis, its script implements the same rule and a test
//! (`tests/api/rules.rs`) runs the script on the cases below.

use super::Event;
use super::{
    Attempt, DeliveryOutcome, DeliveryStatus, EventId, Link, Message, MessageStatus, ShortCode,
    Subscription, link_delivered, links_sent,
};
use chrono::{DateTime, Utc};

mod pacing;
pub use pacing::{RATE_WINDOW_MS, SlotGrant, take_slots};

/// The dedup window a lead's click finds.
#[derive(Debug, Clone, Copy)]
pub struct OpenWindow<'a> {
    /// The click time (ms) of the click that opened it.
    pub opened_at: i64,
    /// That click's event.
    pub by: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowDecision {
    /// The click opens the window and emits its event.
    Opens,
    /// The click is the one that opened the window, written again (a retry): it emitted.
    AlreadyOpened,
    /// A window opened by another click at `opened_at` holds it: counted, nothing emitted.
    Inside { opened_at: i64 },
}

/// What a lead's click at `at` (ms, click time) with event `event` does, given the window
/// it finds. Windows are judged in click time, so that clicks written late (buffered
/// through an outage) are deduplicated as they happened.
pub fn window(
    found: Option<OpenWindow<'_>>,
    at: i64,
    event: &EventId,
    window_ms: i64,
) -> WindowDecision {
    match found {
        Some(open) if open.by == event.as_str() => WindowDecision::AlreadyOpened,
        Some(open) if at < open.opened_at + window_ms => WindowDecision::Inside {
            opened_at: open.opened_at,
        },
        _ => WindowDecision::Opens,
    }
}

/// The window found (its opening time and event), a click's time and event, the decision.
pub type WindowCase = (
    Option<(i64, &'static str)>,
    i64,
    &'static str,
    WindowDecision,
);

/// Cases of [`window`] with a 30 s window: (the window found as its opening time and event,
/// the click's time, the click's event, the decision). The Redis script that takes this
/// decision atomically is held to the same cases (`tests/api/rules.rs`).
pub const WINDOW_CASES: [WindowCase; 5] = [
    (None, 1_000, "evt_a", WindowDecision::Opens),
    (
        Some((1_000, "evt_a")),
        1_000,
        "evt_a",
        WindowDecision::AlreadyOpened,
    ),
    (
        Some((1_000, "evt_a")),
        30_999,
        "evt_b",
        WindowDecision::Inside { opened_at: 1_000 },
    ),
    (
        Some((1_000, "evt_a")),
        31_000,
        "evt_b",
        WindowDecision::Opens,
    ),
    // A click earlier than the one that opened the window (written late) is inside it.
    (
        Some((5_000, "evt_a")),
        4_000,
        "evt_b",
        WindowDecision::Inside { opened_at: 5_000 },
    ),
];

/// How many codes a creation draws for one link before giving up: with 62^8 codes a
/// single collision is already rare.
pub const CODE_ATTEMPTS: usize = 10;

/// Every code drawn for a link was taken.
#[derive(Debug, thiserror::Error)]
#[error("no free code found in {CODE_ATTEMPTS} draws; raise AKTI_CODE_LENGTH")]
pub struct NoFreeCode;

/// What holds an identity (campaign, phone, URL) when a link of it is created.
#[derive(Debug)]
pub enum Holder {
    Free,
    Live(Link),
    /// A code whose link no longer exists.
    Dead(ShortCode),
}

#[derive(Debug, PartialEq, Eq)]
pub enum Creation {
    /// The identity's link exists: answer it (`200`).
    Existing(Link),
    /// Create the link; `replacing` is the dead code the identity still names.
    Create { replacing: Option<ShortCode> },
    /// The identity has a link under another code than the custom one asked for.
    IdentityTaken,
}

/// Whether creating a link of an identity held by `holder`, with the custom code `custom`
/// if any, creates one, finds one, or conflicts.
pub fn creation(holder: Holder, custom: Option<&ShortCode>) -> Creation {
    match holder {
        Holder::Live(link) if custom.is_some_and(|c| *c != link.code) => Creation::IdentityTaken,
        Holder::Live(link) => Creation::Existing(link),
        Holder::Free => Creation::Create { replacing: None },
        Holder::Dead(code) => Creation::Create {
            replacing: Some(code),
        },
    }
}

/// Whether a claimed delivery may be attempted: its subscription exists and is enabled,
/// its event is still kept, and it is still pending (not settled by a replay meanwhile).
/// One that may not is released as failed (replayable).
pub fn attemptable(
    subscription: Option<&Subscription>,
    event_kept: bool,
    status: Option<DeliveryStatus>,
) -> bool {
    subscription.is_some_and(|s| !s.disabled)
        && event_kept
        && status == Some(DeliveryStatus::Pending)
}

/// What an outcome does to its delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement<'a> {
    /// The new status; `None` leaves it as it is.
    pub status: Option<DeliveryStatus>,
    /// The attempt to add to the log.
    pub attempt: Option<&'a Attempt>,
    /// When it is due again.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The subscriber answered 410: the subscription is disabled.
    pub disables_subscription: bool,
    /// Applies only to a delivery still pending.
    pub only_if_pending: bool,
}

pub fn settle(outcome: &DeliveryOutcome) -> Settlement<'_> {
    let none = Settlement {
        status: None,
        attempt: None,
        next_attempt_at: None,
        disables_subscription: false,
        only_if_pending: false,
    };
    match outcome {
        DeliveryOutcome::Delivered(a) => Settlement {
            status: Some(DeliveryStatus::Delivered),
            attempt: Some(a),
            ..none
        },
        DeliveryOutcome::Retry(a, at) => Settlement {
            status: Some(DeliveryStatus::Pending),
            attempt: Some(a),
            next_attempt_at: Some(*at),
            ..none
        },
        DeliveryOutcome::Failed(a) => Settlement {
            status: Some(DeliveryStatus::Failed),
            attempt: Some(a),
            ..none
        },
        DeliveryOutcome::Gone(a) => Settlement {
            status: Some(DeliveryStatus::Failed),
            attempt: Some(a),
            disables_subscription: true,
            ..none
        },
        DeliveryOutcome::Deferred(at) => Settlement {
            next_attempt_at: Some(*at),
            ..none
        },
        DeliveryOutcome::Dropped => Settlement {
            status: Some(DeliveryStatus::Failed),
            only_if_pending: true,
            ..none
        },
    }
}

/// A campaign counter a status report adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageCounter {
    Sent,
    Delivered,
}

impl MessageCounter {
    /// The counter's name in the campaign's stats (the JSON field and Redis hash field).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sent => "messagesSent",
            Self::Delivered => "messagesDelivered",
        }
    }
}

/// What the first report of `status` for `message` does: the counter it adds to and the
/// events it emits (one `lead.link_sent` per short link when sent; one
/// `lead.link_delivered` when delivered, if the body holds a short link; failures are only
/// recorded). A repeated report does nothing.
pub fn first_report(
    message: &Message,
    status: MessageStatus,
    at: DateTime<Utc>,
) -> (Option<MessageCounter>, Vec<Event>) {
    match status {
        MessageStatus::Sent => (Some(MessageCounter::Sent), links_sent(message, at)),
        MessageStatus::Delivered => (
            Some(MessageCounter::Delivered),
            link_delivered(message, at).into_iter().collect(),
        ),
        MessageStatus::Failed | MessageStatus::Undelivered => (None, Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        CampaignId, Destination, Routing, SubscriptionFilter, SubscriptionId, from_millis,
    };

    #[test]
    fn a_window_is_open_for_its_length_in_click_time_and_knows_its_own_click() {
        for (found, at, event, expected) in WINDOW_CASES {
            let found = found.map(|(opened_at, by)| OpenWindow { opened_at, by });
            let event = EventId::from_trusted(event.to_owned());
            assert_eq!(
                window(found, at, &event, 30_000),
                expected,
                "{found:?} {at}"
            );
        }
    }

    fn link(code: &str) -> Link {
        Link {
            code: ShortCode::parse(code).unwrap(),
            campaign_id: CampaignId::parse("c").unwrap(),
            phone: None,
            external_lead_id: None,
            url: Destination::parse("https://a.test/").unwrap(),
            created_at: from_millis(0),
            expires_at: None,
            disabled: false,
            liveness_set_at: None,
            routing: Routing::default(),
        }
    }

    #[test]
    fn an_identity_is_found_created_replaced_or_in_conflict() {
        let code = |c: &str| ShortCode::parse(c).unwrap();
        assert_eq!(
            creation(Holder::Free, None),
            Creation::Create { replacing: None }
        );
        assert_eq!(
            creation(Holder::Dead(code("old")), Some(&code("new"))),
            Creation::Create {
                replacing: Some(code("old"))
            }
        );
        assert_eq!(
            creation(Holder::Live(link("abc")), None),
            Creation::Existing(link("abc"))
        );
        assert_eq!(
            creation(Holder::Live(link("abc")), Some(&code("abc"))),
            Creation::Existing(link("abc"))
        );
        assert_eq!(
            creation(Holder::Live(link("abc")), Some(&code("xyz"))),
            Creation::IdentityTaken
        );
    }

    #[test]
    fn only_a_pending_delivery_of_an_enabled_subscription_with_its_event_is_attempted() {
        let mut sub = Subscription {
            id: SubscriptionId::generate(),
            url: "https://a.test/".into(),
            filter: SubscriptionFilter::default(),
            description: None,
            secret: String::new(),
            created_at: from_millis(0),
            disabled: false,
            rate_limit: None,
        };
        let pending = Some(DeliveryStatus::Pending);
        assert!(attemptable(Some(&sub), true, pending));
        assert!(!attemptable(None, true, pending));
        assert!(!attemptable(Some(&sub), false, pending));
        assert!(!attemptable(
            Some(&sub),
            true,
            Some(DeliveryStatus::Delivered)
        ));
        assert!(!attemptable(Some(&sub), true, None));
        sub.disabled = true;
        assert!(!attemptable(Some(&sub), true, pending));
    }

    #[test]
    fn each_outcome_settles_its_delivery() {
        let attempt = Attempt {
            at: from_millis(0),
            status_code: Some(410),
            error: None,
            duration_ms: 1,
        };
        let later = from_millis(5_000);
        let gone = DeliveryOutcome::Gone(attempt.clone());
        let gone = settle(&gone);
        assert_eq!(gone.status, Some(DeliveryStatus::Failed));
        assert!(gone.disables_subscription && gone.attempt.is_some());
        let retry = DeliveryOutcome::Retry(attempt.clone(), later);
        let retry = settle(&retry);
        assert_eq!(
            (retry.status, retry.next_attempt_at),
            (Some(DeliveryStatus::Pending), Some(later))
        );
        let deferred = DeliveryOutcome::Deferred(later);
        let deferred = settle(&deferred);
        assert_eq!((deferred.status, deferred.attempt), (None, None));
        let dropped = settle(&DeliveryOutcome::Dropped);
        assert!(dropped.only_if_pending);
        assert_eq!(dropped.status, Some(DeliveryStatus::Failed));
        assert_eq!(
            settle(&DeliveryOutcome::Delivered(attempt)).status,
            Some(DeliveryStatus::Delivered)
        );
    }
}
