//! Webhook subscriptions and their delivery logs. A subscription's URL is checked against
//! the SSRF rules when it is set (and again by the dispatcher at every connection).

use crate::dispatch::{signing, ssrf};
use crate::domain::{
    DeliveryRecord, DeliveryStatus, Destination, EventId, Page, Position, Subscription,
    SubscriptionFilter, SubscriptionId, SubscriptionPatch, now_millis,
};
use crate::store::{Outbox, StoreError, SubscriptionStore};
use std::sync::Arc;

/// A subscription to create, validated.
#[derive(Debug, Clone)]
pub struct NewSubscription {
    pub url: Destination,
    pub filter: SubscriptionFilter,
    pub description: Option<String>,
    pub rate_limit: Option<u32>,
}

/// A change to a subscription, validated; `Some(None)` clears a filter or the description.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionChange {
    pub url: Option<Destination>,
    pub event_types: Option<Option<Vec<crate::domain::EventType>>>,
    pub campaign_ids: Option<Option<Vec<crate::domain::CampaignId>>>,
    pub description: Option<Option<String>>,
    pub disabled: Option<bool>,
    pub rate_limit: Option<Option<u32>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    /// The URL may not be delivered to; the text says why, for the client.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Webhooks {
    subs: Arc<dyn SubscriptionStore>,
    outbox: Arc<dyn Outbox>,
    allow_private: bool,
}

impl Webhooks {
    pub fn new(
        subs: Arc<dyn SubscriptionStore>,
        outbox: Arc<dyn Outbox>,
        allow_private: bool,
    ) -> Self {
        Self {
            subs,
            outbox,
            allow_private,
        }
    }

    pub async fn subscribe(&self, new: NewSubscription) -> Result<Subscription, SubscribeError> {
        let sub = Subscription {
            id: SubscriptionId::generate(),
            url: self.target(&new.url).await?,
            filter: new.filter,
            description: new.description,
            secret: signing::new_secret(),
            created_at: now_millis(),
            disabled: false,
            rate_limit: new.rate_limit,
        };
        self.subs.create_subscription(&sub).await?;
        Ok(sub)
    }

    pub async fn get(&self, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        self.subs.get_subscription(id).await
    }

    pub async fn list(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Page<Subscription>, StoreError> {
        self.subs.list_subscriptions(after, limit).await
    }

    pub async fn change(
        &self,
        id: &SubscriptionId,
        change: SubscriptionChange,
    ) -> Result<Option<Subscription>, SubscribeError> {
        let url = match &change.url {
            Some(url) => Some(self.target(url).await?),
            None => None,
        };
        let patch = SubscriptionPatch {
            url,
            event_types: change.event_types,
            campaign_ids: change.campaign_ids,
            description: change.description,
            disabled: change.disabled,
            secret: None,
            rate_limit: change.rate_limit,
        };
        Ok(self.subs.update_subscription(id, &patch).await?)
    }

    /// A new signing secret; deliveries from now on are signed with it.
    pub async fn rotate_secret(
        &self,
        id: &SubscriptionId,
    ) -> Result<Option<Subscription>, StoreError> {
        let patch = SubscriptionPatch {
            secret: Some(signing::new_secret()),
            ..Default::default()
        };
        self.subs.update_subscription(id, &patch).await
    }

    pub async fn delete(&self, id: &SubscriptionId) -> Result<bool, StoreError> {
        self.subs.delete_subscription(id).await
    }

    /// The delivery log, newest first; `None` when there is no such subscription.
    pub async fn deliveries(
        &self,
        id: &SubscriptionId,
        status: Option<DeliveryStatus>,
        before: Option<Position>,
        limit: usize,
    ) -> Result<Option<Page<DeliveryRecord>>, StoreError> {
        if self.subs.get_subscription(id).await?.is_none() {
            return Ok(None);
        }
        self.outbox
            .list_deliveries(id, status, before, limit)
            .await
            .map(Some)
    }

    /// Sends one event to the subscription again, now; `None` when there is no such
    /// subscription, `Some(false)` when it has no such delivery.
    pub async fn retry(
        &self,
        id: &SubscriptionId,
        event: &EventId,
    ) -> Result<Option<bool>, StoreError> {
        if self.subs.get_subscription(id).await?.is_none() {
            return Ok(None);
        }
        self.outbox.retry_delivery(id, event).await.map(Some)
    }

    /// A target the dispatcher may post to: not port 0, and unless private targets are
    /// allowed, not an address inside our network.
    async fn target(&self, url: &Destination) -> Result<String, SubscribeError> {
        let parsed = url::Url::parse(url.as_str())
            .map_err(|_| SubscribeError::Refused("is not a URL".into()))?;
        if parsed.port() == Some(0) {
            return Err(SubscribeError::Refused("must not use port 0".into()));
        }
        if !self.allow_private {
            (ssrf::check_target(&parsed).await)
                .map_err(|e| SubscribeError::Refused(format!("is refused: {e}")))?;
        }
        Ok(url.as_str().to_owned())
    }
}
