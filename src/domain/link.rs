//! A tracked link: one destination, for one lead (or none), in one campaign.

use super::{CampaignId, Destination, ExternalLeadId, Phone, ShortCode};
use chrono::{DateTime, Utc};

/// A stored link. Timestamps have millisecond precision so that they survive both stores
/// unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub code: ShortCode,
    pub campaign_id: CampaignId,
    /// `None` for a campaign-wide link: it redirects and counts clicks, but emits no lead
    /// events.
    pub phone: Option<Phone>,
    pub external_lead_id: Option<ExternalLeadId>,
    pub url: Destination,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub disabled: bool,
    /// When a `PATCH` last set the link's own `disabled` or `expiresAt` (`None`: never):
    /// against its campaign's settings, the later wins (see `CampaignState::govern`).
    pub liveness_set_at: Option<DateTime<Utc>>,
    pub routing: Routing,
}

/// Where a click goes instead of `url`: per device, and with the short URL's query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    /// For iPhones and iPads (an App Store or deep link).
    pub ios_url: Option<Destination>,
    /// For Android devices (a Google Play or deep link).
    pub android_url: Option<Destination>,
    /// Append the short URL's query parameters to the destination.
    pub forward_query: bool,
}

/// The device a click comes from, as far as device destinations care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Ios,
    Android,
    Other,
}

impl Device {
    /// The device of a click whose agent names system `os` (bots' and previews' too: a
    /// preview goes where its device would).
    pub fn of(os: super::analytics::Os) -> Device {
        match os {
            super::analytics::Os::Ios => Device::Ios,
            super::analytics::Os::Android => Device::Android,
            _ => Device::Other,
        }
    }

    /// Which of a link's destinations a click from this device goes to.
    pub fn pick<'a>(self, url: &'a str, ios: Option<&'a str>, android: Option<&'a str>) -> &'a str {
        match self {
            Device::Ios => ios.unwrap_or(url),
            Device::Android => android.unwrap_or(url),
            Device::Other => url,
        }
    }
}

/// Why a link does not redirect right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    Disabled,
    Expired,
}

impl Link {
    /// `Err` when the link exists but must answer `410`.
    pub fn check_live(&self, now: DateTime<Utc>) -> Result<(), Gone> {
        if self.disabled {
            Err(Gone::Disabled)
        } else if self.expires_at.is_some_and(|t| t <= now) {
            Err(Gone::Expired)
        } else {
            Ok(())
        }
    }

    /// The key that makes creation idempotent: the same campaign, lead phone and
    /// destination always name the same link.
    pub fn identity(&self) -> (&CampaignId, Option<&Phone>, &Destination) {
        (&self.campaign_id, self.phone.as_ref(), &self.url)
    }
}

/// A link to create. `code` is the customer's custom code, if any; otherwise the store
/// generates one.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub campaign_id: CampaignId,
    pub phone: Option<Phone>,
    pub external_lead_id: Option<ExternalLeadId>,
    pub url: Destination,
    pub code: Option<ShortCode>,
    pub expires_at: Option<DateTime<Utc>>,
    pub routing: Routing,
}

impl NewLink {
    pub fn identity(&self) -> (&CampaignId, Option<&Phone>, &Destination) {
        (&self.campaign_id, self.phone.as_ref(), &self.url)
    }

    /// The link as it will be stored under `code`, created at `now`.
    pub fn into_link(self, code: ShortCode, now: DateTime<Utc>) -> Link {
        Link {
            code,
            campaign_id: self.campaign_id,
            phone: self.phone,
            external_lead_id: self.external_lead_id,
            url: self.url,
            created_at: now,
            expires_at: self.expires_at,
            disabled: false,
            liveness_set_at: None,
            routing: self.routing,
        }
    }
}

/// A partial update, made at `at`. `Some(None)` clears an optional field (the expiry, a
/// device URL).
#[derive(Debug, Clone, Default)]
pub struct LinkPatch {
    pub at: DateTime<Utc>,
    pub url: Option<Destination>,
    pub disabled: Option<bool>,
    pub expires_at: Option<Option<DateTime<Utc>>>,
    pub ios_url: Option<Option<Destination>>,
    pub android_url: Option<Option<Destination>>,
    pub forward_query: Option<bool>,
}

impl LinkPatch {
    pub fn apply(&self, link: &mut Link) {
        if let Some(url) = &self.url {
            link.url = url.clone();
        }
        if let Some(disabled) = self.disabled {
            link.disabled = disabled;
        }
        if let Some(expires_at) = self.expires_at {
            link.expires_at = expires_at;
        }
        if self.disabled.is_some() || self.expires_at.is_some() {
            link.liveness_set_at = Some(self.at);
        }
        if let Some(ios_url) = &self.ios_url {
            link.routing.ios_url = ios_url.clone();
        }
        if let Some(android_url) = &self.android_url {
            link.routing.android_url = android_url.clone();
        }
        if let Some(forward_query) = self.forward_query {
            link.routing.forward_query = forward_query;
        }
    }
}

/// The short URLs of links: `AKTI_BASE_URL` (without a trailing slash) and the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortUrls {
    base: String,
}

impl ShortUrls {
    /// `base` is an http(s) origin, possibly with a path, without a trailing slash.
    pub fn new(base: impl Into<String>) -> Self {
        Self { base: base.into() }
    }

    pub fn of(&self, code: &str) -> String {
        format!("{}/{code}", self.base)
    }

    pub fn base(&self) -> &str {
        &self.base
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::analytics::Os;

    const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) \
        AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
    const IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
        (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
    const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 \
        (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";
    const WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
        (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

    #[test]
    fn each_device_goes_to_its_own_destination_or_else_the_url() {
        let (url, ios, android) = ("https://u/", Some("https://i/"), Some("https://a/"));
        let device = |agent| Device::of(Os::of(agent));
        let pick = |agent| device(agent).pick(url, ios, android);
        assert_eq!(pick(Some(IPHONE)), "https://i/");
        assert_eq!(pick(Some(IPAD)), "https://i/");
        assert_eq!(pick(Some(ANDROID)), "https://a/");
        assert_eq!(pick(Some(WINDOWS)), "https://u/");
        assert_eq!(pick(None), "https://u/");
        // A device without its own destination goes to the url.
        assert_eq!(device(Some(IPHONE)).pick(url, None, android), url);
        assert_eq!(device(Some(ANDROID)).pick(url, ios, None), url);
    }
}
