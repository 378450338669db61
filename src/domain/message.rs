//! SMS messages as the sender reported them and as we rewrote them.

use super::{CampaignId, ExternalLeadId, MessageId, Phone};
use chrono::{DateTime, Utc};

/// The longest body we take, in characters: Twilio's limit for one (concatenated) SMS.
pub const MAX_BODY_CHARS: usize = 1600;

/// One short link in a message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageLink {
    /// The destination, normalised.
    pub url: String,
    pub short_url: String,
    pub code: String,
}

/// A message as stored: what the sender asked for, and what we made of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: MessageId,
    pub campaign_id: CampaignId,
    pub phone: Phone,
    pub external_lead_id: Option<ExternalLeadId>,
    /// The body as the sender gave it.
    pub original: String,
    /// The body with every URL replaced by the lead's short link.
    pub body: String,
    /// Distinct short links, in order of first appearance.
    pub links: Vec<MessageLink>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What a sender reports about a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageStatus {
    Sent,
    Delivered,
    Failed,
    Undelivered,
}

impl MessageStatus {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sent" => Some(Self::Sent),
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            "undelivered" => Some(Self::Undelivered),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Undelivered => "undelivered",
        }
    }
}
