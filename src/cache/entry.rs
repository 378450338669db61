//! A link as the redirect path needs it, laid out to be small: the cache holds up to
//! `AKTI_CACHE_CAPACITY` of them on every instance.
//!
//! Two allocations: the entry (56 bytes and the `Arc`'s counts) and one string holding the
//! code, URL, phone and external lead id. The campaign id is shared among all cached links
//! of the campaign (see `LinkCache`). `created_at` is left out: no redirect or event reads
//! it.

use crate::domain::{CampaignId, ClickedLead, Device, Gone, Link, with_forwarded_query};
use axum::http::HeaderValue;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::time::Duration;

/// What the cached links of one campaign share (a campaign sends to thousands of leads).
#[derive(Debug)]
pub struct SharedCampaign {
    pub id: CampaignId,
    /// Counts the campaign's changes (a `PATCH` of the campaign) heard on this instance:
    /// an entry made before the last one is read again, so that one change reaches every
    /// cached link of the campaign at once.
    generation: AtomicU32,
}

impl SharedCampaign {
    pub fn new(id: CampaignId) -> Self {
        Self {
            id,
            generation: AtomicU32::new(0),
        }
    }

    pub(super) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn generation(&self) -> u32 {
        self.generation.load(Ordering::Acquire)
    }
}

#[derive(Debug)]
pub struct CachedLink {
    campaign: Arc<SharedCampaign>,
    /// Until when the link redirects, in milliseconds since the epoch: `i64::MAX` when it
    /// never expires, `i64::MIN` when it is disabled.
    live_until: i64,
    /// The code, the destination URL, the iOS and Android URLs, the lead's phone, the
    /// external lead id.
    text: Box<str>,
    /// When the cache last stored or served it, in seconds from the cache's origin (for
    /// the time-to-live).
    used_at: AtomicU32,
    /// The campaign's generation it was made in.
    generation: u32,
    /// When the lead's dedup window that this instance last heard of opened (unix ms, a
    /// click's time), or `i64::MIN`. Kept on the entry, which a redirect holds anyway, so
    /// that knowing a repeat tap emits nothing costs no lookup.
    window_opened_at: AtomicI64,
    /// Where the URL, the iOS URL and the Android URL end in `text`.
    url_end: u16,
    ios_end: u16,
    android_end: u16,
    /// The code's length, and in the top bit whether the query is forwarded (codes are at
    /// most 64 bytes).
    code_len_and_forward: u8,
    /// The phone's length (0: none).
    phone_len: u8,
}

// 56 bytes and the `Arc`'s two counts take an 80-byte allocation, with room for one more
// 8-byte field.
const _: () = assert!(std::mem::size_of::<CachedLink>() <= 56);

const FORWARD_QUERY: u8 = 0x80;

impl CachedLink {
    /// `link` as its campaign's state governs it; `campaign`: the link's campaign, possibly
    /// shared with other entries.
    pub fn new(link: &Link, campaign: Arc<SharedCampaign>) -> Self {
        let code = link.code.as_str();
        let url = link.url.as_str();
        let routing = &link.routing;
        let ios = routing.ios_url.as_ref().map_or("", |u| u.as_str());
        let android = routing.android_url.as_ref().map_or("", |u| u.as_str());
        let phone = link.phone.as_ref().map_or("", |p| p.as_str());
        let lead_id = (link.external_lead_id.as_ref()).map_or("", |x| x.as_str());
        let text = [code, url, ios, android, phone, lead_id].concat();
        // Codes are at most 64 bytes, URLs 2,048 and phones 16: the offsets fit.
        let url_end = code.len() + url.len();
        let ios_end = url_end + ios.len();
        let live_until = match (link.disabled, link.expires_at) {
            (true, _) => i64::MIN,
            (false, None) => i64::MAX,
            (false, Some(t)) => t.timestamp_millis(),
        };
        let forward = if routing.forward_query {
            FORWARD_QUERY
        } else {
            0
        };
        Self {
            generation: campaign.generation(),
            campaign,
            live_until,
            used_at: AtomicU32::new(0),
            window_opened_at: AtomicI64::new(i64::MIN),
            url_end: url_end as u16,
            ios_end: ios_end as u16,
            android_end: (ios_end + android.len()) as u16,
            code_len_and_forward: code.len() as u8 | forward,
            phone_len: phone.len() as u8,
            text: text.into_boxed_str(),
        }
    }

    pub fn code(&self) -> &str {
        &self.text[..self.code_len()]
    }

    pub fn campaign_id(&self) -> &CampaignId {
        &self.campaign.id
    }

    /// Learns that the lead's window opened at `at` (a later window is open longer).
    pub fn window_opened(&self, at: DateTime<Utc>) {
        (self.window_opened_at).fetch_max(at.timestamp_millis(), Ordering::Relaxed);
    }

    /// Whether a click at `at` falls in a dedup window of length `window` that this
    /// instance knows open. Windows never close early, so this is exact whatever other
    /// instances do; not knowing means asking the store.
    pub fn in_open_window(&self, at: DateTime<Utc>, window: Duration) -> bool {
        let opened = self.window_opened_at.load(Ordering::Relaxed);
        opened != i64::MIN
            && at.timestamp_millis() < opened.saturating_add(window.as_millis() as i64)
    }

    /// Whether its campaign has changed since it was made.
    pub fn is_outdated(&self) -> bool {
        self.generation != self.campaign.generation()
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
        &self.text[self.code_len()..usize::from(self.url_end)]
    }

    /// The `Location` header for a click from `agent`, on a short URL with `query` (the
    /// request's, `None` without one). Built per redirect rather than kept: kept, it would
    /// be a second copy of the URL in every entry, to save little.
    pub fn location(&self, device: Device, query: Option<&str>) -> Option<HeaderValue> {
        let destination = self.destination(device);
        let forwarded = query
            .filter(|_| self.forwards_query())
            .and_then(|q| with_forwarded_query(destination, q));
        // Stored URLs, and what `with_forwarded_query` makes of them, are WHATWG
        // serialisations: ASCII without controls.
        match forwarded {
            Some(url) => HeaderValue::try_from(url).ok(),
            None => HeaderValue::from_str(destination).ok(),
        }
    }

    /// The URL a click from `device` goes to (before any forwarded query).
    fn destination(&self, device: Device) -> &str {
        let ios = self.optional(usize::from(self.url_end), usize::from(self.ios_end));
        let android = self.optional(usize::from(self.ios_end), usize::from(self.android_end));
        device.pick(self.url(), ios, android)
    }

    /// Whether every stored destination is a valid `Location` header (the cache admits
    /// no other link).
    pub fn is_servable(&self) -> bool {
        let ends = [self.url_end, self.ios_end, self.android_end].map(usize::from);
        let mut start = self.code_len();
        ends.iter().all(|&end| {
            let ok = HeaderValue::from_str(&self.text[start..end]).is_ok();
            start = end;
            ok
        })
    }

    /// `None` for a campaign-wide link (no lead).
    pub fn phone(&self) -> Option<&str> {
        self.optional(self.phone_start(), self.lead_id_start())
    }

    /// What `lead.link_clicked` says of this link's lead; `None` without a lead.
    pub fn clicked_lead<'a>(&'a self, short_url: &'a str) -> Option<ClickedLead<'a>> {
        Some(ClickedLead {
            campaign_id: self.campaign_id(),
            phone: self.phone()?,
            external_lead_id: self.external_lead_id(),
            url: self.url(),
            short_url,
        })
    }

    pub fn external_lead_id(&self) -> Option<&str> {
        self.optional(self.lead_id_start(), self.text.len())
    }

    fn optional(&self, start: usize, end: usize) -> Option<&str> {
        (end > start).then(|| &self.text[start..end])
    }

    fn code_len(&self) -> usize {
        usize::from(self.code_len_and_forward & !FORWARD_QUERY)
    }

    fn forwards_query(&self) -> bool {
        self.code_len_and_forward & FORWARD_QUERY != 0
    }

    fn phone_start(&self) -> usize {
        usize::from(self.android_end)
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
    use crate::domain::{Destination, ExternalLeadId, Phone, Routing, ShortCode, from_millis};

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
            liveness_set_at: None,
            routing: Routing::default(),
        }
    }

    fn cached(link: &Link) -> CachedLink {
        CachedLink::new(
            link,
            Arc::new(SharedCampaign::new(link.campaign_id.clone())),
        )
    }

    #[test]
    fn knows_a_window_open_until_its_end_and_the_latest_window_wins() {
        let entry = cached(&link(Some("+15551234567"), None, None));
        let window = Duration::from_secs(30);
        assert!(
            !entry.in_open_window(from_millis(1_000), window),
            "nothing heard yet"
        );
        entry.window_opened(from_millis(10_000));
        assert!(entry.in_open_window(from_millis(10_000), window));
        assert!(entry.in_open_window(from_millis(39_999), window));
        assert!(
            !entry.in_open_window(from_millis(40_000), window),
            "closed at its end"
        );
        // A later window is open longer; an answer about an older one changes nothing.
        entry.window_opened(from_millis(50_000));
        entry.window_opened(from_millis(10_000));
        assert!(entry.in_open_window(from_millis(79_999), window));
    }

    #[test]
    fn gives_back_every_field_the_redirect_needs() {
        let full = cached(&link(Some("+15551234567"), Some("lead-9"), None));
        assert_eq!(full.code(), "abc123");
        assert_eq!(full.campaign_id().as_str(), "spring");
        assert_eq!(full.url(), "https://example.com/a?b=c");
        assert_eq!(full.phone(), Some("+15551234567"));
        assert_eq!(full.external_lead_id(), Some("lead-9"));
        assert_eq!(
            full.location(Device::Other, None).unwrap(),
            "https://example.com/a?b=c"
        );

        let no_lead_id = cached(&link(Some("+15551234567"), None, None));
        assert_eq!(no_lead_id.phone(), Some("+15551234567"));
        assert_eq!(no_lead_id.external_lead_id(), None);

        let campaign_wide = cached(&link(None, None, None));
        assert_eq!(campaign_wide.phone(), None);
        assert_eq!(campaign_wide.external_lead_id(), None);
        assert_eq!(campaign_wide.url(), "https://example.com/a?b=c");
    }

    #[test]
    fn sends_each_device_to_its_destination_with_the_forwarded_query() {
        let (iphone, android) = (Device::Ios, Device::Android);
        let mut l = link(Some("+15551234567"), Some("lead-9"), None);
        l.routing = Routing {
            ios_url: Some(Destination::parse("https://apps.apple.com/app/id1").unwrap()),
            android_url: Some(Destination::parse("https://play.google.com/x?id=a").unwrap()),
            forward_query: true,
        };
        let entry = cached(&l);
        let at = |agent, query| entry.location(agent, query).unwrap();
        assert_eq!(at(iphone, None), "https://apps.apple.com/app/id1");
        assert_eq!(
            at(android, Some("s=1")),
            "https://play.google.com/x?id=a&s=1"
        );
        assert_eq!(
            at(Device::Other, Some("b=d")),
            "https://example.com/a?b=c&b=d"
        );
        // The other fields still read back whole around the device URLs.
        assert_eq!(entry.url(), "https://example.com/a?b=c");
        assert_eq!(entry.phone(), Some("+15551234567"));
        assert_eq!(entry.external_lead_id(), Some("lead-9"));
        assert_eq!(entry.code(), "abc123");

        // Without forwardQuery the query is dropped; without device URLs every device
        // goes to the url.
        l.routing = Routing::default();
        let plain = cached(&l);
        assert_eq!(
            plain.location(iphone, Some("s=1")).unwrap(),
            "https://example.com/a?b=c"
        );
    }

    #[test]
    fn a_change_of_its_campaign_outdates_every_entry_made_before() {
        let l = link(Some("+15551234567"), None, None);
        let campaign = Arc::new(SharedCampaign::new(l.campaign_id.clone()));
        let before = CachedLink::new(&l, campaign.clone());
        assert!(!before.is_outdated());
        campaign.changed();
        let after = CachedLink::new(&l, campaign.clone());
        assert!(before.is_outdated());
        assert!(!after.is_outdated());
    }

    #[test]
    fn the_longest_values_keep_their_bounds() {
        let mut l = link(Some("+123456789012345"), Some(&"x".repeat(256)), None);
        l.code = ShortCode::parse(&"c".repeat(64)).unwrap();
        let long_url = format!("https://example.com/{}", "u".repeat(2000));
        l.url = Destination::parse(&long_url).unwrap();
        l.routing.ios_url = Some(Destination::parse(&long_url).unwrap());
        l.routing.android_url = Some(Destination::parse(&long_url).unwrap());
        l.routing.forward_query = true;
        let entry = cached(&l);
        assert_eq!(
            entry.location(Device::Other, None).unwrap(),
            long_url.as_str()
        );
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
