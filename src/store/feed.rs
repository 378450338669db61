//! The change feed: how an instance learns that another one changed a link, so that its
//! redirect cache drops it. Only a store shared by several instances has one.

use super::StoreError;
use crate::domain::ShortCode;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Instant;

/// Something changed links somewhere: the redirect caches of every instance must drop them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkChange {
    One(ShortCode),
    /// Changes may have been missed (the feed reconnected): drop everything.
    All,
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
    /// Tells every instance sharing the store that `code` changed.
    async fn announce(&self, code: &ShortCode) -> Result<(), StoreError>;

    /// Tells `listener` of other instances' changes until `shutdown`.
    fn watch(&self, listener: Arc<dyn FeedListener>, shutdown: tokio_util::sync::CancellationToken);
}
