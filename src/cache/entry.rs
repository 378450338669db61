//! A link as the redirect path needs it, laid out to be small: the cache holds up to
//! `AKTI_CACHE_CAPACITY` of them on every instance.
//!
//! Two allocations: the entry (48 bytes and the `Arc`'s counts) and one string holding the
//! code, URL, phone and external lead id. The campaign id is shared among all cached links
//! of the campaign (see `LinkCache`). `created_at` is left out: no redirect or event reads
//! it.

use crate::domain::{CampaignId, ClickedLead, Gone, Link};
use axum::http::HeaderValue;
use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug)]
pub struct CachedLink {
    pub campaign_id: CampaignId,
    /// Until when the link redirects, in milliseconds since the epoch: `i64::MAX` when it
    /// never expires, `i64::MIN` when it is disabled.
    live_until: i64,
    /// When the cache last stored or served it, in seconds from the cache's origin (for
    /// the time-to-live).
    used_at: AtomicU32,
    /// Where the URL ends in `text`; the lengths of the code and of the phone (0: none).
    url_end: u16,
    code_len: u8,
    phone_len: u8,
    /// The code, the destination URL, the lead's phone, the external lead id.
    text: Box<str>,
}

// 48 bytes and the `Arc`'s two counts fill one 64-byte allocation; a field more would
// take the next size (80).
const _: () = assert!(std::mem::size_of::<CachedLink>() <= 48);

impl CachedLink {
    /// `campaign_id`: the link's campaign, possibly a clone shared with other entries.
    pub fn new(link: &Link, campaign_id: CampaignId) -> Self {
        let code = link.code.as_str();
        let url = link.url.as_str();
        let phone = link.phone.as_ref().map_or("", |p| p.as_str());
        let lead_id = (link.external_lead_id.as_ref()).map_or("", |x| x.as_str());
        let text = [code, url, phone, lead_id].concat();
        // Codes are at most 64 bytes, URLs 2,048 and phones 16: the offsets fit.
        let live_until = match (link.disabled, link.expires_at) {
            (true, _) => i64::MIN,
            (false, None) => i64::MAX,
            (false, Some(t)) => t.timestamp_millis(),
        };
        Self {
            campaign_id,
            live_until,
            used_at: AtomicU32::new(0),
            url_end: (code.len() + url.len()) as u16,
            code_len: code.len() as u8,
            phone_len: phone.len() as u8,
            text: text.into_boxed_str(),
        }
    }

    pub fn code(&self) -> &str {
        &self.text[..usize::from(self.code_len)]
    }

    /// `Err` when the link exists but must answer `410` (the same rule as
    /// [`Link::check_live`]).
    pub fn check_live(&self, now: DateTime<Utc>) -> Result<(), Gone> {
        if self.live_until == i64::MIN {
            Err(Gone::Disabled)
        } else if self.live_until <= now.timestamp_millis() {
            Err(Gone::Expired)
        } else {
            Ok(())
        }
    }

    pub fn url(&self) -> &str {
        &self.text[usize::from(self.code_len)..usize::from(self.url_end)]
    }

    /// The `Location` header. Built per redirect rather than kept: kept, it would be a
    /// second copy of the URL in every entry, to save little.
    pub fn location(&self) -> Option<HeaderValue> {
        // Stored URLs are WHATWG serialisations: ASCII without controls.
        HeaderValue::from_str(self.url()).ok()
    }

    /// `None` for a campaign-wide link (no lead).
    pub fn phone(&self) -> Option<&str> {
        let phone = &self.text[self.phone_start()..self.lead_id_start()];
        (!phone.is_empty()).then_some(phone)
    }

    /// What `lead.link_clicked` says of this link's lead; `None` without a lead.
    pub fn clicked_lead<'a>(&'a self, short_url: &'a str) -> Option<ClickedLead<'a>> {
        Some(ClickedLead {
            campaign_id: &self.campaign_id,
            phone: self.phone()?,
            external_lead_id: self.external_lead_id(),
            url: self.url(),
            short_url,
        })
    }

    pub fn external_lead_id(&self) -> Option<&str> {
        let id = &self.text[self.lead_id_start()..];
        (!id.is_empty()).then_some(id)
    }

    fn phone_start(&self) -> usize {
        usize::from(self.url_end)
    }

    fn lead_id_start(&self) -> usize {
        self.phone_start() + usize::from(self.phone_len)
    }

    pub(super) fn used_at(&self) -> u32 {
        self.used_at.load(Ordering::Relaxed)
    }

    pub(super) fn mark_used(&self, at: u32) {
        self.used_at.store(at, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Destination, ExternalLeadId, Phone, ShortCode, from_millis};

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

    fn cached(link: &Link) -> CachedLink {
        CachedLink::new(link, link.campaign_id.clone())
    }

    #[test]
    fn gives_back_every_field_the_redirect_needs() {
        let full = cached(&link(Some("+15551234567"), Some("lead-9"), None));
        assert_eq!(full.code(), "abc123");
        assert_eq!(full.campaign_id.as_str(), "spring");
        assert_eq!(full.url(), "https://example.com/a?b=c");
        assert_eq!(full.phone(), Some("+15551234567"));
        assert_eq!(full.external_lead_id(), Some("lead-9"));
        assert_eq!(full.location().unwrap(), "https://example.com/a?b=c");

        let no_lead_id = cached(&link(Some("+15551234567"), None, None));
        assert_eq!(no_lead_id.phone(), Some("+15551234567"));
        assert_eq!(no_lead_id.external_lead_id(), None);

        let campaign_wide = cached(&link(None, None, None));
        assert_eq!(campaign_wide.phone(), None);
        assert_eq!(campaign_wide.external_lead_id(), None);
        assert_eq!(campaign_wide.url(), "https://example.com/a?b=c");
    }

    #[test]
    fn the_longest_values_keep_their_bounds() {
        let mut l = link(Some("+123456789012345"), Some(&"x".repeat(256)), None);
        l.code = ShortCode::parse(&"c".repeat(64)).unwrap();
        let long_url = format!("https://example.com/{}", "u".repeat(2000));
        l.url = Destination::parse(&long_url).unwrap();
        let entry = cached(&l);
        assert_eq!(entry.code(), "c".repeat(64));
        assert_eq!(entry.url(), long_url);
        assert_eq!(entry.phone(), Some("+123456789012345"));
        assert_eq!(entry.external_lead_id(), Some("x".repeat(256).as_str()));
    }

    #[test]
    fn answers_gone_exactly_when_the_link_does() {
        let now = from_millis(1_000_000);
        for expires_at in [None, Some(999_999), Some(1_000_000), Some(1_000_001)] {
            for disabled in [false, true] {
                let mut l = link(Some("+15551234567"), None, expires_at);
                l.disabled = disabled;
                assert_eq!(
                    cached(&l).check_live(now),
                    l.check_live(now),
                    "expires_at {expires_at:?}, disabled {disabled}"
                );
            }
        }
    }
}
