//! The layout version recorded in Redis (see [`keys::LAYOUT`]).

use super::{RedisStore, keys};
use crate::store::StoreError;
use std::sync::Arc;
use std::time::Duration;

/// The store was written with another key layout than this build's.
#[derive(Debug, thiserror::Error)]
#[error(
    "the Redis store holds key layout {found:?}, this build uses layout {}: \
     run the version that wrote it, or start on an empty Redis",
    keys::LAYOUT
)]
pub struct LayoutMismatch {
    pub found: String,
}

impl RedisStore {
    /// Records this build's layout in an empty store, and answers whether the store holds
    /// it. A store with data but no version was written before versions were recorded:
    /// layout 1, one `{q}` slot for everything.
    pub async fn check_layout(&self) -> Result<Result<(), LayoutMismatch>, StoreError> {
        let mut get = redis::cmd("HGET");
        get.arg(keys::META).arg("layout");
        let found: Option<String> = match self.query(&get).await? {
            Some(found) => Some(found),
            None if self.holds_layout_one().await? => Some("1".to_owned()),
            None => {
                let mut set = redis::cmd("HSETNX");
                set.arg(keys::META).arg("layout").arg(keys::LAYOUT);
                self.query::<()>(&set).await?;
                self.query(&get).await?
            }
        };
        Ok(match found {
            Some(found) if found != keys::LAYOUT => Err(LayoutMismatch { found }),
            _ => Ok(()),
        })
    }

    async fn holds_layout_one(&self) -> Result<bool, StoreError> {
        let mut exists = redis::cmd("EXISTS");
        exists.arg(&keys::LAYOUT_ONE[..]);
        Ok(self.query::<u32>(&exists).await? > 0)
    }
}

/// How often the subscription filter copies are checked against `{subs}`.
const RECONCILE_EVERY: Duration = Duration::from_secs(60);
/// How long start-up waits for Redis before it goes on without it.
const START_WAIT: Duration = Duration::from_secs(3);

impl RedisStore {
    /// What start-up does with the store: checks its layout (a mismatch stops start-up),
    /// logs which Redis it is, and brings the subscription filter copies in step. A store
    /// that does not answer yet is prepared in the background once it does; a layout
    /// found wrong then stops the process.
    pub async fn prepare(self: &Arc<Self>) -> Result<(), LayoutMismatch> {
        self.reconcile_every(RECONCILE_EVERY);
        match tokio::time::timeout(START_WAIT, self.prepare_now()).await {
            Ok(Ok(checked)) => return checked,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the store does not answer; checking it when it does")
            }
            Err(_) => tracing::warn!("the store does not answer; checking it when it does"),
        }
        self.prepare_later();
        Ok(())
    }

    async fn prepare_now(&self) -> Result<Result<(), LayoutMismatch>, StoreError> {
        if let Err(mismatch) = self.check_layout().await? {
            return Ok(Err(mismatch));
        }
        let described = self.describe().await?;
        tracing::info!(store = %described, "connected to the store");
        self.reconcile_filter_copies().await?;
        Ok(Ok(()))
    }

    /// Brings the subscription filter copies in step every `period` while the store is in
    /// use: a write that failed half-way is mended without waiting for a restart.
    fn reconcile_every(self: &Arc<Self>, period: Duration) {
        let store = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(store) = store.upgrade() else { return };
                if let Err(e) = store.reconcile_filter_copies().await {
                    tracing::debug!(error = %e, "subscription filter copies not checked");
                }
            }
        });
    }

    fn prepare_later(self: &Arc<Self>) {
        let store = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                match store.prepare_now().await {
                    Ok(Ok(())) => return,
                    Ok(Err(mismatch)) => {
                        tracing::error!("{mismatch}; stopping");
                        std::process::exit(1);
                    }
                    Err(_) => {}
                }
            }
        });
    }
}
