//! SMS messages: finding the URLs in a body and putting the lead's short links in their
//! place, byte for byte around them.

use crate::domain::{CampaignId, Destination, ExternalLeadId, InvalidValue, Phone, ShortCode};
use chrono::{DateTime, Utc};
use linkify::{LinkFinder, LinkKind};

/// The longest body we take, in characters: Twilio's limit for one (concatenated) SMS.
pub const MAX_BODY_CHARS: usize = 1600;

/// The sender's id of a message (its own, or its SMS provider's, e.g. a Twilio
/// `MessageSid`), or one we generate. It appears in a URL path, so it is kept to a safe
/// alphabet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageId(String);

impl MessageId {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let ok = (1..=128).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
        if !ok {
            return Err(InvalidValue::new(
                "messageId",
                "must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' and '-'",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn generate() -> Self {
        Self(crate::domain::random_id("msg_", 24))
    }

    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

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

/// A URL found in a body: where it is, and where it leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundUrl {
    pub start: usize,
    pub end: usize,
    pub destination: Destination,
}

/// The URLs of `body` that we shorten, in order. linkify decides where a URL ends
/// (trailing punctuation, brackets) and finds bare domains; a bare domain is taken as
/// `https://`. Our own short links (under `base_url`) and anything that is not a valid
/// destination stay as they are.
pub fn find_urls(body: &str, base_url: &str) -> Vec<FoundUrl> {
    let mut finder = LinkFinder::new();
    finder.kinds(&[LinkKind::Url]).url_must_have_scheme(false);
    let own = format!("{base_url}/");
    finder
        .links(body)
        .filter_map(|link| {
            let text = link.as_str();
            let has_scheme = text.contains("://");
            if has_scheme && !text.to_ascii_lowercase().starts_with("http") {
                return None;
            }
            let absolute = if has_scheme {
                text.to_owned()
            } else {
                format!("https://{text}")
            };
            if absolute.starts_with(&own) {
                return None;
            }
            let destination = Destination::parse(&absolute).ok()?;
            Some(FoundUrl {
                start: link.start(),
                end: link.end(),
                destination,
            })
        })
        .collect()
}

/// `body` with each found URL replaced by its short URL (`short[i]` for `found[i]`);
/// every other byte stays as it was.
pub fn rewrite(body: &str, found: &[FoundUrl], short: &[String]) -> String {
    let mut out = String::with_capacity(body.len() + found.len() * 32);
    let mut at = 0;
    for (url, short) in found.iter().zip(short) {
        out.push_str(&body[at..url.start]);
        out.push_str(short);
        at = url.end;
    }
    out.push_str(&body[at..]);
    out
}

/// The code of a short URL we made.
pub fn code_of(short_url: &str) -> Option<ShortCode> {
    ShortCode::parse(short_url.rsplit('/').next()?).ok()
}

/// Records a status report of message `id` (from the API or a provider's callback): the
/// first `sent` queues one `lead.link_sent` per short link, the first `delivered` one
/// `lead.link_delivered` if the body holds a short link, `failed`/`undelivered` only count.
/// Answers what happened and how many events were queued.
pub async fn report_status(
    store: &dyn crate::store::Store,
    id: &MessageId,
    status: MessageStatus,
    at: Option<DateTime<Utc>>,
) -> Result<(crate::store::StatusRecorded, usize), crate::store::StoreError> {
    use crate::store::StatusRecorded;
    let Some(message) = store.get_message(id).await? else {
        return Ok((StatusRecorded::UnknownMessage, 0));
    };
    let at = at.unwrap_or_else(crate::domain::now_millis);
    let events = match status {
        MessageStatus::Sent => crate::events::links_sent(&message, at),
        MessageStatus::Delivered => crate::events::link_delivered(&message, at)
            .into_iter()
            .collect(),
        MessageStatus::Failed | MessageStatus::Undelivered => Vec::new(),
    };
    let recorded = store.record_message_status(id, status, at, &events).await?;
    let queued = if recorded == StatusRecorded::Recorded {
        events.len()
    } else {
        0
    };
    Ok((recorded, queued))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(body: &str) -> Vec<String> {
        find_urls(body, "https://link.akti.fyi")
            .iter()
            .map(|f| f.destination.as_str().to_owned())
            .collect()
    }

    #[test]
    fn finds_urls_without_their_trailing_punctuation() {
        assert_eq!(
            urls("Deal: https://shop.example.com/a?b=1."),
            ["https://shop.example.com/a?b=1"]
        );
        assert_eq!(
            urls("(see https://example.com/x), ok!"),
            ["https://example.com/x"]
        );
        assert_eq!(
            urls("Wiki https://en.wikipedia.org/wiki/Rust_(language)!"),
            ["https://en.wikipedia.org/wiki/Rust_(language)"]
        );
        assert_eq!(
            urls("Go to shop.example.com/deal, now"),
            ["https://shop.example.com/deal"]
        );
        assert_eq!(urls("HTTP://EXAMPLE.COM"), ["http://example.com/"]);
    }

    #[test]
    fn leaves_emails_other_schemes_and_our_own_links_alone() {
        assert!(urls("Write to john@example.com").is_empty());
        assert!(urls("ftp://files.example.com/a").is_empty());
        assert!(urls("Already short: https://link.akti.fyi/abc123").is_empty());
        assert!(urls("No links here, just text 3.14").is_empty());
    }

    #[test]
    fn rewriting_keeps_every_other_byte() {
        let body = "Hé 👋 https://a.example/x. Then https://b.example?q=ü!";
        let found = find_urls(body, "https://l.test");
        assert_eq!(found.len(), 2);
        let out = rewrite(
            body,
            &found,
            &["https://l.test/A".into(), "https://l.test/B".into()],
        );
        assert_eq!(out, "Hé 👋 https://l.test/A. Then https://l.test/B!");
    }

    #[test]
    fn message_ids_are_path_safe() {
        assert!(MessageId::parse("SM0123456789abcdef0123456789abcdef").is_ok());
        assert!(MessageId::parse("ext:batch-7.1_a").is_ok());
        assert!(MessageId::parse("a/b").is_err());
        assert!(MessageId::parse("").is_err());
        assert!(MessageId::parse(&"x".repeat(129)).is_err());
    }
}
