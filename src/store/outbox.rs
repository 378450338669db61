//! The outbox port: events waiting to be delivered, leased to dispatchers one delivery at
//! a time, and the log of what became of each.

use super::StoreError;
use crate::domain::rules::SlotGrant;
use crate::domain::{
    DeliveryOutcome, DeliveryRecord, DeliveryStatus, DeliveryTask, Event, EventId, Page, Position,
    SubscriptionId,
};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// The store's handle of a delivery leased to a dispatcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// An entry of one of the store's streams, acknowledged when the outcome is written
    /// (Redis: a stream per partition).
    Entry { stream: usize, id: String },
    /// The delivery's own row, which holds its lease (SQLite).
    Row,
}

/// A delivery and its lease.
#[derive(Debug, Clone)]
pub struct Leased {
    pub task: DeliveryTask,
    pub lease: Lease,
}

/// How much waits to be delivered.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueDepth {
    /// Deliveries neither delivered nor failed.
    pub pending: u64,
    /// The age of the oldest of them.
    pub oldest: Option<Duration>,
}

#[async_trait]
pub trait Outbox: Send + Sync + 'static {
    /// Queues events for every matching subscription, durably.
    async fn enqueue_events(&self, events: &[Event]) -> Result<(), StoreError>;

    /// Leases up to `max` due deliveries to `consumer`, waiting up to `wait` for one. A
    /// lease not finished within `lease` (the consumer crashed) is handed out again.
    /// Deliveries that [`crate::domain::rules::attemptable`] refuses are released as
    /// failed instead.
    async fn claim_deliveries(
        &self,
        consumer: &str,
        max: usize,
        wait: Duration,
        lease: Duration,
    ) -> Result<Vec<Leased>, StoreError>;

    /// Records the outcomes of leased deliveries, as [`crate::domain::rules::settle`]
    /// says, and releases their leases, in one round trip or transaction. An outcome whose
    /// lease was already released (written before) changes nothing.
    async fn finish_deliveries(&self, done: &[(Leased, DeliveryOutcome)])
    -> Result<(), StoreError>;

    /// Newest first.
    async fn list_deliveries(
        &self,
        sub: &SubscriptionId,
        status: Option<DeliveryStatus>,
        before: Option<Position>,
        limit: usize,
    ) -> Result<Page<DeliveryRecord>, StoreError>;

    /// Makes a delivery due now (whatever its status); `false` when there is none.
    async fn retry_delivery(
        &self,
        sub: &SubscriptionId,
        event: &EventId,
    ) -> Result<bool, StoreError>;

    async fn queue_depth(&self) -> Result<QueueDepth, StoreError>;

    /// Up to `wanted` slots to send to `sub`, limited to `rate` a second over every
    /// instance sharing the store ([`crate::domain::rules::take_slots`]).
    async fn take_send_slots(
        &self,
        sub: &SubscriptionId,
        rate: u32,
        wanted: u32,
    ) -> Result<SlotGrant, StoreError>;

    /// Says that `consumer` is alive for `ttl` more. Deliveries leased to a consumer that
    /// stopped saying so are handed out again at once rather than after their lease. A
    /// store used by one process only, which takes back its leases when it opens, needs
    /// nothing of it.
    async fn keep_alive(&self, _consumer: &str, _ttl: Duration) -> Result<(), StoreError> {
        Ok(())
    }

    /// This outbox on connections of its own, made on the calling runtime, for a
    /// dispatcher that runs on a runtime of its own ([`crate::background`]): the
    /// connections the redirects use must not be driven, or reconnected, by threads of
    /// lower priority. `None` when the store has no connection to make.
    fn with_own_connections(&self) -> Result<Option<Arc<dyn Outbox>>, StoreError> {
        Ok(None)
    }
}
