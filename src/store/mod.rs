//! The store: where everything the service keeps lives, behind one small port per concern,
//! with two backends.
//!
//! - [`redis::RedisStore`]: shared by any number of instances.
//! - [`embedded::EmbeddedStore`]: SQLite under `AKTI_DATA_DIR`, for a single process.
//!
//! Each component takes only the port it uses: the redirect cache [`LinkStore`], the click
//! recorder [`ClickStore`], the dispatcher [`Outbox`]. [`Store`] is all of them, for the
//! code that wires them up and for the contract tests (`tests/api/store_contract/`), which
//! hold both backends to the same behaviour. Decisions both backends take are in
//! [`crate::domain::rules`]; the backends store and fetch.

pub mod campaigns;
pub mod clicks;
pub mod embedded;
mod error;
pub mod feed;
pub mod health;
pub mod leads;
pub mod links;
pub mod messages;
pub mod outbox;
pub mod redis;
pub mod subscriptions;

pub use campaigns::{CampaignStore, CampaignSummary};
pub use clicks::{CampaignTotals, ClickStore};
pub use error::StoreError;
pub use feed::{ChangeFeed, FeedListener, LinkChange};
pub use leads::{Erasure, LeadStore};
pub use links::{Created, LinkQuery, LinkStore};
pub use messages::{MessageStore, StatusRecorded};
pub use outbox::{Lease, Leased, Outbox, QueueDepth};
pub use subscriptions::SubscriptionStore;

use async_trait::async_trait;

/// Every port of one backend.
#[async_trait]
pub trait Store:
    LinkStore + ClickStore + CampaignStore + Outbox + SubscriptionStore + MessageStore + LeadStore
{
    /// Answers when the store is reachable; `/readyz` is built on it.
    async fn ping(&self) -> Result<(), StoreError>;
}
