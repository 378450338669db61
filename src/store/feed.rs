//! The change feed: how an instance learns that another one changed a link, so that its
//! redirect cache drops it. Only a store shared by several instances has one.

use super::StoreError;
use crate::domain::{CampaignId, ShortCode};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Instant;

/// Something changed links somewhere: the redirect caches of every instance must drop them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkChange {
    One(ShortCode),
    /// The campaign's state changed: every link of it.
    Campaign(CampaignId),
    /// Changes may have been missed (the feed reconnected): drop everything.
    All,
}

/// A campaign's change on the feed: a prefix no code can have.
const CAMPAIGN: &str = "campaign:";
const ALL: &str = "*";

impl LinkChange {
    /// How the change travels on the feed.
    pub fn payload(&self) -> String {
        match self {
            LinkChange::One(code) => code.as_str().to_owned(),
            LinkChange::Campaign(campaign) => format!("{CAMPAIGN}{}", campaign.as_str()),
            LinkChange::All => ALL.to_owned(),
        }
    }

    pub fn from_payload(payload: &str) -> LinkChange {
        if payload == ALL {
            LinkChange::All
        } else if let Some(campaign) = payload.strip_prefix(CAMPAIGN) {
            LinkChange::Campaign(CampaignId::from_trusted(campaign.into()))
        } else {
            LinkChange::One(ShortCode::from_trusted(payload))
        }
    }
}

/// Hears what the feed says.
pub trait FeedListener: Send + Sync + 'static {
    fn changed(&self, change: LinkChange);
    /// Every change announced before `at` has been heard. The feed says so several times a
    /// second while it works; the cache trusts its entries only while it hears it.
    fn caught_up(&self, at: Instant);
}

#[async_trait]
pub trait ChangeFeed: Send + Sync + 'static {
    /// Tells every instance sharing the store of `change`.
    async fn announce(&self, change: &LinkChange) -> Result<(), StoreError>;

    /// Tells `listener` of other instances' changes until `shutdown`.
    fn watch(&self, listener: Arc<dyn FeedListener>, shutdown: tokio_util::sync::CancellationToken);
}
