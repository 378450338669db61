//! A link as the redirect path needs it, laid out to be small: the cache holds up to
//! `AKTI_CACHE_CAPACITY` of them on every instance.
//!
//! A full [`Link`] with its `Location` header prebuilt took about 380 bytes of heap (seven
//! allocations); this takes about 180 (four). The code and campaign stay shared strings,
//! because every click hands them to the counters and events without copying; the URL,
//! phone and external lead id share one allocation. `created_at` is left out: no redirect
//! or event reads it.

use crate::domain::{CampaignId, Gone, Link, ShortCode};
use axum::http::HeaderValue;
use chrono::{DateTime, Utc};

#[derive(Debug)]
pub struct CachedLink {
    pub code: ShortCode,
    pub campaign_id: CampaignId,
    /// Milliseconds since the epoch; `i64::MAX` when the link never expires.
    expires_at: i64,
    disabled: bool,
    /// Where the URL ends in `text`, and where the phone ends (equal: no phone).
    url_end: u16,
    phone_end: u16,
    /// The destination URL, then the lead's phone, then the external lead id.
    text: Box<str>,
}

impl CachedLink {
    pub fn new(link: &Link) -> Self {
        let url = link.url.as_str();
        let phone = link.phone.as_ref().map_or("", |p| p.as_str());
        let lead_id = (link.external_lead_id.as_ref()).map_or("", |x| x.as_str());
        let mut text = String::with_capacity(url.len() + phone.len() + lead_id.len());
        text.push_str(url);
        text.push_str(phone);
        text.push_str(lead_id);
        // URLs are at most 2,048 bytes and phones 16: the offsets fit in 16 bits.
        let url_end = url.len() as u16;
        Self {
            code: link.code.clone(),
            campaign_id: link.campaign_id.clone(),
            expires_at: link.expires_at.map_or(i64::MAX, |t| t.timestamp_millis()),
            disabled: link.disabled,
            url_end,
            phone_end: url_end + phone.len() as u16,
            text: text.into_boxed_str(),
        }
    }

    /// `Err` when the link exists but must answer `410` (the same rule as
    /// [`Link::check_live`]).
    pub fn check_live(&self, now: DateTime<Utc>) -> Result<(), Gone> {
        if self.disabled {
            Err(Gone::Disabled)
        } else if self.expires_at <= now.timestamp_millis() {
            Err(Gone::Expired)
        } else {
            Ok(())
        }
    }

    pub fn url(&self) -> &str {
        &self.text[..self.url_end as usize]
    }

    /// The `Location` header. Built per redirect rather than kept: it would hold a second
    /// copy of the URL (and its shared-buffer header) in every entry, for about 1 % of a
    /// redirect's cost.
    pub fn location(&self) -> Option<HeaderValue> {
        // Stored URLs are WHATWG serialisations: ASCII without controls.
        HeaderValue::from_str(self.url()).ok()
    }

    /// `None` for a campaign-wide link (no lead).
    pub fn phone(&self) -> Option<&str> {
        let phone = &self.text[self.url_end as usize..self.phone_end as usize];
        (!phone.is_empty()).then_some(phone)
    }

    pub fn external_lead_id(&self) -> Option<&str> {
        let id = &self.text[self.phone_end as usize..];
        (!id.is_empty()).then_some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Destination, ExternalLeadId, Phone, from_millis};

    fn link(phone: Option<&str>, lead_id: Option<&str>, expires_at: Option<i64>) -> Link {
        Link {
            code: ShortCode::parse("abc123").unwrap(),
            campaign_id: CampaignId::parse("spring").unwrap(),
            phone: phone.map(|p| Phone::parse(p).unwrap()),
            external_lead_id: lead_id.map(|x| ExternalLeadId::parse(x).unwrap()),
            url: Destination::parse("https://example.com/a?b=c").unwrap(),
            created_at: from_millis(0),
            expires_at: expires_at.map(from_millis),
            disabled: false,
        }
    }

    #[test]
    fn gives_back_every_field_the_redirect_needs() {
        let full = CachedLink::new(&link(Some("+15551234567"), Some("lead-9"), None));
        assert_eq!(full.code.as_str(), "abc123");
        assert_eq!(full.campaign_id.as_str(), "spring");
        assert_eq!(full.url(), "https://example.com/a?b=c");
        assert_eq!(full.phone(), Some("+15551234567"));
        assert_eq!(full.external_lead_id(), Some("lead-9"));
        assert_eq!(full.location().unwrap(), "https://example.com/a?b=c");

        let no_lead_id = CachedLink::new(&link(Some("+15551234567"), None, None));
        assert_eq!(no_lead_id.phone(), Some("+15551234567"));
        assert_eq!(no_lead_id.external_lead_id(), None);

        let campaign_wide = CachedLink::new(&link(None, None, None));
        assert_eq!(campaign_wide.phone(), None);
        assert_eq!(campaign_wide.external_lead_id(), None);
        assert_eq!(campaign_wide.url(), "https://example.com/a?b=c");
    }

    #[test]
    fn answers_gone_exactly_when_the_link_does() {
        let now = from_millis(1_000_000);
        for expires_at in [None, Some(999_999), Some(1_000_000), Some(1_000_001)] {
            for disabled in [false, true] {
                let mut l = link(Some("+15551234567"), None, expires_at);
                l.disabled = disabled;
                assert_eq!(
                    CachedLink::new(&l).check_live(now),
                    l.check_live(now),
                    "expires_at {expires_at:?}, disabled {disabled}"
                );
            }
        }
    }
}
