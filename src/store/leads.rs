//! The leads port: erasing everything the store keeps of one lead (a privacy request).

use super::StoreError;
use crate::domain::{Phone, ShortCode};
use async_trait::async_trait;

/// What an erasure deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erasure {
    /// The lead's links, for the caches of every instance to drop.
    pub links: Vec<ShortCode>,
    pub messages: u64,
}

#[async_trait]
pub trait LeadStore: Send + Sync + 'static {
    /// Deletes every link of `phone` in every campaign (with its identity, its places in
    /// the indexes, its counters and its window) and every message to it. Campaign totals
    /// keep their counts; events already emitted stay until they expire.
    async fn erase_lead(&self, phone: &Phone) -> Result<Erasure, StoreError>;
}
