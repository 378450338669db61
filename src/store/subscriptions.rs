//! The subscriptions port.

use super::StoreError;
use crate::domain::{Page, Position, Subscription, SubscriptionId, SubscriptionPatch};
use async_trait::async_trait;

#[async_trait]
pub trait SubscriptionStore: Send + Sync + 'static {
    async fn create_subscription(&self, sub: &Subscription) -> Result<(), StoreError>;

    async fn get_subscription(
        &self,
        id: &SubscriptionId,
    ) -> Result<Option<Subscription>, StoreError>;

    /// Oldest first, by creation time and then id.
    async fn list_subscriptions(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Page<Subscription>, StoreError>;

    async fn update_subscription(
        &self,
        id: &SubscriptionId,
        patch: &SubscriptionPatch,
    ) -> Result<Option<Subscription>, StoreError>;

    /// Deletes the subscription; its pending deliveries are dropped when they come up.
    async fn delete_subscription(&self, id: &SubscriptionId) -> Result<bool, StoreError>;
}
