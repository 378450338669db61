//! The store: where links live, behind one interface with two backends.
//!
//! - [`redis::RedisStore`]: the production store, shared by any number of instances.
//! - [`embedded::EmbeddedStore`]: SQLite in WAL mode under `AKTI_DATA_DIR`, for a single
//!   process (the default when `AKTI_REDIS_URL` is unset).
//!
//! Both pass the same contract test suite (`tests/api/store_contract.rs`). Errors say what
//! happened to the caller (`Unavailable`, `CodeTaken`), never which library failed.

pub mod embedded;
pub mod redis;

use crate::domain::{CampaignId, Link, LinkPatch, NewLink, Phone, ShortCode};
use async_trait::async_trait;
use std::sync::Arc;

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
}

/// Receives link changes made by any instance sharing the store.
pub type ChangeListener =
    Arc<dyn Fn(LinkChange) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
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

    /// Starts delivering other instances' changes to `listener` until `shutdown`.
    fn watch_changes(
        &self,
        listener: ChangeListener,
        shutdown: tokio_util::sync::CancellationToken,
    );
}
