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
        }
    }
}

/// A partial update. `expires_at: Some(None)` clears the expiry.
#[derive(Debug, Clone, Default)]
pub struct LinkPatch {
    pub url: Option<Destination>,
    pub disabled: Option<bool>,
    pub expires_at: Option<Option<DateTime<Utc>>>,
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
