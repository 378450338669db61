//! The store: where links live, behind one interface with two backends.
//!
//! - [`redis::RedisStore`]: the production store, shared by any number of instances.
//! - [`embedded::EmbeddedStore`]: SQLite in WAL mode under `AKTI_DATA_DIR`, for a single
//!   process (the default when `AKTI_REDIS_URL` is unset).
//!
//! Both pass the same contract test suite (`tests/api/store_contract.rs`). Errors say what
//! happened to the caller (`Unavailable`, `CodeTaken`), never which library failed.

pub mod embedded;
pub mod health;
pub mod redis;

mod types;

pub use types::*;

use crate::domain::{CampaignId, Link, LinkPatch, NewLink, Phone, ShortCode};
use crate::events::Event;
use crate::messages::{Message, MessageId, MessageStatus};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// What a store call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store did not answer (down, unreachable, timed out). Retryable.
    #[error("store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A custom code is already used by a different link.
    #[error("code is taken by another link")]
    CodeTaken,
    /// A change would give this link the identity (campaign, phone, URL) of another link.
    #[error("another link has this campaign, phone and url")]
    IdentityTaken,
    /// A list cursor we did not issue.
    #[error("invalid cursor")]
    InvalidCursor,
    /// Data in the store that we cannot read back; a bug or a foreign writer.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(Box::new(e))
    }
}

/// The outcome of one creation: the link, and whether this call created it (`201`) or
/// found it by its identity (`200`).
#[derive(Debug, Clone)]
pub struct Created {
    pub link: Link,
    pub is_new: bool,
}

/// Filter and page of `GET /v1/links`.
#[derive(Debug, Clone, Default)]
pub struct LinkQuery {
    pub campaign_id: Option<CampaignId>,
    pub phone: Option<Phone>,
    /// Opaque, issued by the same backend in an earlier page.
    pub cursor: Option<String>,
    pub limit: usize,
}

/// One page of links, oldest first.
#[derive(Debug, Clone)]
pub struct LinkPage {
    pub links: Vec<Link>,
    pub next_cursor: Option<String>,
}

/// Something changed a link somewhere: the redirect caches of every instance must drop it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkChange {
    One(ShortCode),
    /// Changes may have been missed (the change feed reconnected): drop everything.
    All,
    /// Every change announced before this instant has been delivered. The feed says so
    /// several times a second while it works; a cache trusts its entries only while it
    /// hears it (see `cache.rs`).
    CaughtUp(std::time::Instant),
}

/// Receives link changes made by any instance sharing the store.
pub type ChangeListener =
    Arc<dyn Fn(LinkChange) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

/// Everything the service keeps: links, clicks and events, webhook subscriptions and their
/// deliveries. Implemented by both backends.
pub trait Store: LinkStore + ClickStore + WebhookStore + MessageStore {}

impl<T: LinkStore + ClickStore + WebhookStore + MessageStore> Store for T {}

#[async_trait]
pub trait LinkStore: Send + Sync + 'static {
    /// Answers when the store is reachable; `/readyz` is built on it.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Creates links, or finds the existing ones with the same identity (campaign, phone,
    /// URL), in the order given. Generated codes have `code_length` characters. A custom
    /// code held by a link of another identity fails the whole call with `CodeTaken`.
    async fn create_links(
        &self,
        links: Vec<NewLink>,
        code_length: usize,
    ) -> Result<Vec<Created>, StoreError>;

    async fn get_link(&self, code: &ShortCode) -> Result<Option<Link>, StoreError>;

    /// Applies `patch`; `None` when there is no such link.
    async fn update_link(
        &self,
        code: &ShortCode,
        patch: &LinkPatch,
    ) -> Result<Option<Link>, StoreError>;

    /// `false` when there was no such link.
    async fn delete_link(&self, code: &ShortCode) -> Result<bool, StoreError>;

    async fn list_links(&self, query: &LinkQuery) -> Result<LinkPage, StoreError>;

    /// Tells every other instance sharing this store that `code` changed. A single-process
    /// store has no one to tell.
    async fn announce_change(&self, code: &ShortCode) -> Result<(), StoreError>;

    /// Whether other instances may change links behind this one's back, so that a cache in
    /// front of this store must follow [`LinkStore::watch_changes`] to stay true.
    fn shares_changes(&self) -> bool;

    /// Starts delivering other instances' changes to `listener` until `shutdown`, with
    /// [`LinkChange::CaughtUp`] several times a second while the feed is known to work.
    fn watch_changes(
        &self,
        listener: ChangeListener,
        shutdown: tokio_util::sync::CancellationToken,
    );
}

#[async_trait]
pub trait ClickStore: Send + Sync + 'static {
    /// Records a batch of lead clicks in one round trip (Redis) or one transaction
    /// (SQLite), in order. Opening a click's dedup window and queueing its event for every
    /// matching subscription are one atomic step; when this returns `Ok`, the events are
    /// durable. The window is judged in click time.
    async fn record_lead_clicks(
        &self,
        clicks: &[LeadClick],
    ) -> Result<Vec<ClickOutcome>, StoreError>;

    /// Adds clicks that only count. `batch` names these counts: written again under the
    /// same name (after a timeout whose write may still have run), they are added once.
    async fn add_click_counts(&self, batch: &str, counts: &ClickCounts) -> Result<(), StoreError>;

    /// Queues events for every matching subscription, durably.
    async fn enqueue_events(&self, events: &[Event]) -> Result<(), StoreError>;

    async fn link_stats(&self, code: &ShortCode) -> Result<Stats, StoreError>;

    /// The campaign's counters and its number of links.
    async fn campaign_stats(&self, campaign: &CampaignId) -> Result<(u64, Stats), StoreError>;
}

#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    async fn create_subscription(&self, sub: &Subscription) -> Result<(), StoreError>;

    async fn get_subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError>;

    /// Oldest first.
    async fn list_subscriptions(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Subscription>, StoreError>;

    async fn update_subscription(
        &self,
        id: &str,
        patch: &SubscriptionPatch,
    ) -> Result<Option<Subscription>, StoreError>;

    /// Deletes the subscription; its pending deliveries are dropped when they come up.
    async fn delete_subscription(&self, id: &str) -> Result<bool, StoreError>;

    /// Leases up to `max` due deliveries to `consumer`, waiting up to `wait` for one. A
    /// lease not finished within `lease` (the consumer crashed) is handed out again.
    async fn claim_deliveries(
        &self,
        consumer: &str,
        max: usize,
        wait: Duration,
        lease: Duration,
    ) -> Result<Vec<DeliveryTask>, StoreError>;

    /// Records the outcomes of leased deliveries and releases their leases, in one round
    /// trip or transaction.
    async fn finish_deliveries(
        &self,
        done: &[(DeliveryTask, DeliveryOutcome)],
    ) -> Result<(), StoreError>;

    /// Newest first.
    async fn list_deliveries(
        &self,
        sub_id: &str,
        status: Option<DeliveryStatus>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<DeliveryRecord>, StoreError>;

    /// Makes a delivery due now (whatever its status); `false` when there is none.
    async fn retry_delivery(&self, sub_id: &str, event_id: &str) -> Result<bool, StoreError>;

    /// Deliveries not yet delivered or failed, and the age of the oldest of them.
    async fn queue_depth(&self) -> Result<(u64, Option<Duration>), StoreError>;
}

#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Stores `message` (kept until its `expires_at`) unless one with its id exists; then
    /// answers with that one, unchanged.
    async fn create_message(&self, message: &Message) -> Result<Option<Message>, StoreError>;

    /// `None` when unknown or expired.
    async fn get_message(&self, id: &MessageId) -> Result<Option<Message>, StoreError>;

    /// Records `status` of a message once: the first report of a status counts it in the
    /// campaign's stats and queues `events` atomically with it; a repeat does nothing.
    async fn record_message_status(
        &self,
        id: &MessageId,
        status: MessageStatus,
        at: chrono::DateTime<chrono::Utc>,
        events: &[Event],
    ) -> Result<StatusRecorded, StoreError>;
}
