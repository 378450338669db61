//! Webhook subscriptions, their deliveries and what becomes of an attempt.

use super::{CampaignId, EventId, EventType, SubscriptionId, format_time};
use chrono::{DateTime, Utc};

/// A webhook subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub url: String,
    pub filter: SubscriptionFilter,
    pub description: Option<String>,
    /// `whsec_` + base64 of the signing key.
    pub secret: String,
    pub created_at: DateTime<Utc>,
    pub disabled: bool,
    /// Deliveries per second at most, over all instances; `None`: no limit.
    pub rate_limit: Option<u32>,
}

impl Subscription {
    pub fn wants(&self, event_type: EventType, campaign: &CampaignId) -> bool {
        !self.disabled && self.filter.matches(event_type, campaign)
    }
}

/// Which events a subscription takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionFilter {
    /// `None`: every event type.
    pub event_types: Option<Vec<EventType>>,
    /// `None`: every campaign.
    pub campaign_ids: Option<Vec<CampaignId>>,
}

impl SubscriptionFilter {
    pub fn matches(&self, event_type: EventType, campaign: &CampaignId) -> bool {
        (self.event_types.as_ref()).is_none_or(|t| t.contains(&event_type))
            && (self.campaign_ids.as_ref()).is_none_or(|c| c.contains(campaign))
    }

    /// The filter as a script inside a store reads it when fanning an event out, with the
    /// subscription's `disabled` flag: `<0|1>|<types>|<campaigns>`, each list wrapped in
    /// commas (`,a,b,`) so that `,<name>,` finds a member, and empty for "all".
    pub fn encode(&self, disabled: bool) -> String {
        fn list<'a>(items: Option<impl Iterator<Item = &'a str>>) -> String {
            items.map_or_else(String::new, |items| {
                let mut out = String::from(",");
                for item in items {
                    out.push_str(item);
                    out.push(',');
                }
                out
            })
        }
        format!(
            "{}|{}|{}",
            u8::from(disabled),
            list(
                self.event_types
                    .as_ref()
                    .map(|t| t.iter().map(|t| t.as_str()))
            ),
            list(
                self.campaign_ids
                    .as_ref()
                    .map(|c| c.iter().map(|c| c.as_str()))
            ),
        )
    }
}

/// A partial update; `Some(None)` clears a filter or the description.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionPatch {
    pub url: Option<String>,
    pub event_types: Option<Option<Vec<EventType>>>,
    pub campaign_ids: Option<Option<Vec<CampaignId>>>,
    pub description: Option<Option<String>>,
    pub disabled: Option<bool>,
    pub secret: Option<String>,
    pub rate_limit: Option<Option<u32>>,
}

impl SubscriptionPatch {
    pub fn apply(&self, sub: &mut Subscription) {
        if let Some(url) = &self.url {
            sub.url = url.clone();
        }
        if let Some(types) = &self.event_types {
            sub.filter.event_types = types.clone();
        }
        if let Some(campaigns) = &self.campaign_ids {
            sub.filter.campaign_ids = campaigns.clone();
        }
        if let Some(rate_limit) = self.rate_limit {
            sub.rate_limit = rate_limit;
        }
        if let Some(description) = &self.description {
            sub.description = description.clone();
        }
        if let Some(disabled) = self.disabled {
            sub.disabled = disabled;
        }
        if let Some(secret) = &self.secret {
            sub.secret = secret.clone();
        }
    }
}

/// A delivery a dispatcher may attempt: everything one attempt needs.
#[derive(Debug, Clone)]
pub struct DeliveryTask {
    pub subscription: Subscription,
    pub event_id: EventId,
    pub event_type: EventType,
    pub body: String,
    /// Attempts already made (0 for the first).
    pub attempts_made: u32,
}

/// One attempt, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    #[serde(with = "rfc3339_millis")]
    pub at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// What becomes of a delivery after an attempt (or instead of one).
#[derive(Debug, Clone)]
pub enum DeliveryOutcome {
    Delivered(Attempt),
    /// Failed; try again at the given time.
    Retry(Attempt, DateTime<Utc>),
    /// Failed for the last time.
    Failed(Attempt),
    /// The subscriber answered 410: failed, and the subscription is disabled.
    Gone(Attempt),
    /// Not attempted (the subscription's concurrency cap was reached); due again then.
    Deferred(DateTime<Utc>),
    /// Nothing to do (subscription deleted or disabled, delivery no longer pending).
    Dropped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// A delivery as the log shows it.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    pub event_id: EventId,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    pub attempts: Vec<Attempt>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Attempt times as the delivery log stores and shows them: RFC 3339, milliseconds, `Z`.
mod rfc3339_millis {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_time(at))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_encoding_is_what_the_fan_out_script_reads() {
        let all = SubscriptionFilter::default();
        assert_eq!(all.encode(false), "0||");
        let some = SubscriptionFilter {
            event_types: Some(vec![EventType::LinkClicked]),
            campaign_ids: Some(vec![
                CampaignId::parse("a").unwrap(),
                CampaignId::parse("b").unwrap(),
            ]),
        };
        assert_eq!(some.encode(true), "1|,lead.link_clicked,|,a,b,");
    }

    #[test]
    fn attempts_keep_millisecond_times() {
        let attempt = Attempt {
            at: crate::domain::from_millis(1_706_443_200_123),
            status_code: Some(500),
            error: Some("HTTP 500".into()),
            duration_ms: 3,
        };
        let json = serde_json::to_string(&attempt).unwrap();
        assert!(
            json.starts_with(r#"{"at":"2024-01-28T12:00:00.123Z""#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Attempt>(&json).unwrap(), attempt);
    }
}
