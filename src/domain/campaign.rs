//! What a campaign says of all its links at once: disabled, or an expiry.
//!
//! A campaign's `PATCH` is one write, not one per link: the redirect and the API read the
//! campaign's state beside each link and let it [`govern`](CampaignState::govern) the link.
//! The later of the two wins: a campaign setting overrides what its links said before it,
//! and a link's own later `PATCH` of `disabled` or `expiresAt` (or a link created later)
//! takes that link back into its own hands, as if the campaign's change had been written
//! to every link that existed then.

use super::Link;
use chrono::{DateTime, Utc};

/// A value and when it was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub at: DateTime<Utc>,
}

/// A campaign's settings for its links; `None`: never set for the campaign.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignState {
    pub disabled: Option<Setting<bool>>,
    /// `Setting { value: None, .. }`: the campaign cleared the expiry of its links.
    pub expires_at: Option<Setting<Option<DateTime<Utc>>>>,
}

/// A campaign's `PATCH`, made at `at`.
#[derive(Debug, Clone, Default)]
pub struct CampaignPatch {
    pub disabled: Option<bool>,
    pub expires_at: Option<Option<DateTime<Utc>>>,
    pub at: DateTime<Utc>,
}

impl CampaignState {
    pub fn apply(&mut self, patch: &CampaignPatch) {
        let at = patch.at;
        if let Some(value) = patch.disabled {
            self.disabled = Some(Setting { value, at });
        }
        if let Some(value) = patch.expires_at {
            self.expires_at = Some(Setting { value, at });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.disabled.is_none() && self.expires_at.is_none()
    }

    /// The link as it answers: each campaign setting made after the link's own last
    /// change of its liveness replaces the link's value.
    pub fn govern(&self, link: &mut Link) {
        let own = link.liveness_set_at.unwrap_or(link.created_at);
        if let Some(disabled) = self.disabled.filter(|s| s.at > own) {
            link.disabled = disabled.value;
        }
        if let Some(expires) = self.expires_at.filter(|s| s.at > own) {
            link.expires_at = expires.value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CampaignId, Destination, Routing, ShortCode, from_millis};

    fn link(created: i64, own_change: Option<i64>) -> Link {
        Link {
            code: ShortCode::parse("abc").unwrap(),
            campaign_id: CampaignId::parse("c").unwrap(),
            phone: None,
            external_lead_id: None,
            url: Destination::parse("https://a.test/").unwrap(),
            created_at: from_millis(created),
            expires_at: None,
            disabled: false,
            liveness_set_at: own_change.map(from_millis),
            routing: Routing::default(),
        }
    }

    fn patch(disabled: Option<bool>, expires: Option<Option<i64>>, at: i64) -> CampaignPatch {
        CampaignPatch {
            disabled,
            expires_at: expires.map(|e| e.map(from_millis)),
            at: from_millis(at),
        }
    }

    #[test]
    fn the_later_of_the_campaign_and_the_link_wins() {
        let mut state = CampaignState::default();
        state.apply(&patch(Some(true), None, 100));
        state.apply(&patch(None, Some(Some(5_000)), 200));

        // Created before both: governed by both.
        let mut old = link(10, None);
        state.govern(&mut old);
        assert!(old.disabled);
        assert_eq!(old.expires_at, Some(from_millis(5_000)));

        // Its own change after the first campaign setting, before the second.
        let mut changed = link(10, Some(150));
        state.govern(&mut changed);
        assert!(!changed.disabled);
        assert_eq!(changed.expires_at, Some(from_millis(5_000)));

        // Created (or changed) after both: its own.
        for mut own in [link(300, None), link(10, Some(300))] {
            state.govern(&mut own);
            assert!(!own.disabled);
            assert_eq!(own.expires_at, None);
        }

        // Enabling the campaign again, and clearing its expiry, win over the older ones.
        state.apply(&patch(Some(false), Some(None), 400));
        let mut again = link(10, None);
        again.disabled = true;
        again.expires_at = Some(from_millis(1));
        state.govern(&mut again);
        assert!(!again.disabled);
        assert_eq!(again.expires_at, None);
    }

    #[test]
    fn a_campaign_never_set_changes_nothing() {
        let state = CampaignState::default();
        assert!(state.is_empty());
        let mut l = link(10, None);
        l.disabled = true;
        state.govern(&mut l);
        assert!(l.disabled);
    }
}
