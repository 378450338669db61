//! The lead events, exactly as `shared/seed/link-events.md` defines them.
//!
//! An event's body is rendered once, when the event is created, and stored as bytes: every
//! delivery attempt sends (and signs) the very same body.

use super::{CampaignId, EventId, Message, format_time};
use chrono::{DateTime, Utc};
use serde::Serialize;

pub const API_VERSION: &str = "2026-02-09";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    LinkSent,
    LinkDelivered,
    LinkClicked,
}

impl EventType {
    pub const ALL: [EventType; 3] = [Self::LinkSent, Self::LinkDelivered, Self::LinkClicked];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::LinkSent => "lead.link_sent",
            Self::LinkDelivered => "lead.link_delivered",
            Self::LinkClicked => "lead.link_clicked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// An event ready to be queued for every matching subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `webhook-id` of every delivery of this event.
    pub id: EventId,
    pub event_type: EventType,
    pub campaign_id: CampaignId,
    /// The JSON body, byte for byte as delivered.
    pub body: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Serialize)]
struct Envelope<'a, D: Serialize> {
    metadata: Metadata<'a>,
    data: D,
}

// The structs below render the bodies and, through `ToSchema`, describe them in the
// OpenAPI document's `webhooks` (`http::openapi`): the document cannot drift from the wire.

/// Every event's `metadata`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = EventMetadata)]
pub(crate) struct Metadata<'a> {
    #[schema(example = "2026-02-09")]
    api_version: &'static str,
    #[schema(value_type = String, example = "lead.link_clicked",
        pattern = "^lead\\.link_(sent|delivered|clicked)$")]
    event_type: &'static str,
    campaign_id: &'a str,
    /// When it happened (a status report's `at` when given), RFC 3339 in UTC with
    /// milliseconds.
    #[schema(example = "2026-02-09T12:00:00.000Z")]
    event_time: String,
}

/// `lead.link_clicked`'s `data`: a lead's human click that opened a dedup window.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = LinkClickedData)]
pub(crate) struct ClickedData<'a> {
    /// E.164.
    phone: &'a str,
    /// Present when the lead has one, left out (not `null`) when it has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    external_lead_id: Option<&'a str>,
    /// The link's destination (its `url`, whatever device destination the click took).
    url: &'a str,
    short_url: &'a str,
}

fn render<D: Serialize>(
    event_type: EventType,
    campaign: &CampaignId,
    at: DateTime<Utc>,
    data: D,
) -> Event {
    let envelope = Envelope {
        metadata: Metadata {
            api_version: API_VERSION,
            event_type: event_type.as_str(),
            campaign_id: campaign.as_str(),
            event_time: format_time(&at),
        },
        data,
    };
    Event {
        id: EventId::generate(),
        event_type,
        campaign_id: campaign.clone(),
        // Plain structs of strings: serialising them cannot fail.
        body: serde_json::to_string(&envelope).unwrap_or_default(),
        created_at: at,
    }
}

/// `lead.link_sent`'s `data`: one per short link of a message reported sent.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = LinkSentData)]
pub(crate) struct SentData<'a> {
    phone: &'a str,
    /// Left out when the lead has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    external_lead_id: Option<&'a str>,
    /// The short link that was sent.
    url: &'a str,
}

/// `lead.link_delivered`'s `data`: a message holding short links reported delivered.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = LinkDeliveredData)]
pub(crate) struct DeliveredData<'a> {
    phone: &'a str,
    /// Left out when the lead has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    external_lead_id: Option<&'a str>,
    /// The whole rewritten message body.
    message: &'a str,
}

/// One `lead.link_sent` per distinct short link of `message`, reported sent at `at`.
pub fn links_sent(message: &Message, at: DateTime<Utc>) -> Vec<Event> {
    message
        .links
        .iter()
        .map(|link| {
            render(
                EventType::LinkSent,
                &message.campaign_id,
                at,
                SentData {
                    phone: message.phone.as_str(),
                    external_lead_id: message.external_lead_id.as_ref().map(|x| x.as_str()),
                    url: &link.short_url,
                },
            )
        })
        .collect()
}

/// `lead.link_delivered` with the full rewritten body; `None` when the message holds no
/// short link of ours.
pub fn link_delivered(message: &Message, at: DateTime<Utc>) -> Option<Event> {
    if message.links.is_empty() {
        return None;
    }
    Some(render(
        EventType::LinkDelivered,
        &message.campaign_id,
        at,
        DeliveredData {
            phone: message.phone.as_str(),
            external_lead_id: message.external_lead_id.as_ref().map(|x| x.as_str()),
            message: &message.body,
        },
    ))
}

/// What a `lead.link_clicked` says of the lead and the link, borrowed from wherever the
/// link is held (the redirect cache, on the hot path).
#[derive(Debug, Clone, Copy)]
pub struct ClickedLead<'a> {
    pub campaign_id: &'a CampaignId,
    pub phone: &'a str,
    pub external_lead_id: Option<&'a str>,
    pub url: &'a str,
    pub short_url: &'a str,
}

/// `lead.link_clicked` for a click of `lead` at `at`.
pub fn link_clicked(lead: &ClickedLead<'_>, at: DateTime<Utc>) -> Event {
    render(
        EventType::LinkClicked,
        lead.campaign_id,
        at,
        ClickedData {
            phone: lead.phone,
            external_lead_id: lead.external_lead_id,
            url: lead.url,
            short_url: lead.short_url,
        },
    )
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::from_millis;

    fn lead<'a>(campaign: &'a CampaignId, external: Option<&'a str>) -> ClickedLead<'a> {
        ClickedLead {
            campaign_id: campaign,
            phone: "+1234567890",
            external_lead_id: external,
            url: "https://example.com/destination",
            short_url: "https://link.akti.fyi/abc123",
        }
    }

    #[test]
    fn link_clicked_matches_the_seed_field_for_field() {
        let campaign = CampaignId::parse("abc456xyz").unwrap();
        let event = link_clicked(
            &lead(&campaign, Some("abc123")),
            from_millis(1_706_443_200_000),
        );
        let body: serde_json::Value = serde_json::from_str(&event.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "metadata": {
                    "apiVersion": "2026-02-09",
                    "eventType": "lead.link_clicked",
                    "campaignId": "abc456xyz",
                    "eventTime": "2024-01-28T12:00:00.000Z"
                },
                "data": {
                    "phone": "+1234567890",
                    "externalLeadId": "abc123",
                    "url": "https://example.com/destination",
                    "shortUrl": "https://link.akti.fyi/abc123"
                }
            })
        );
        assert!(event.id.as_str().starts_with("evt_"));
        assert_eq!(event.event_type, EventType::LinkClicked);
    }

    #[test]
    fn a_lead_without_an_external_id_leaves_the_field_out() {
        let campaign = CampaignId::parse("c").unwrap();
        let event = link_clicked(&lead(&campaign, None), from_millis(0));
        assert!(!event.body.contains("externalLeadId"));
    }
}
