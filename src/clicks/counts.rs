//! Writing the clicks that only count, every [`COUNT_FLUSH`], as named batches.

use super::recorder::{COUNT_FLUSH, Known};
use crate::domain::{ClickCounts, random_id};
use crate::store::ClickStore;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Writes the summed counts every [`COUNT_FLUSH`], and once more when told to stop.
pub(super) async fn write_every(
    store: Arc<dyn ClickStore>,
    known: Arc<Known>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut tick = tokio::time::interval(COUNT_FLUSH);
    let mut flush = CountFlush::default();
    loop {
        tokio::select! {
            _ = tick.tick() => flush.write(store.as_ref(), &known).await,
            _ = &mut stop => {
                flush.write(store.as_ref(), &known).await;
                if let Some(unwritten) = &flush.unwritten {
                    tracing::error!(batch = %unwritten, "stopping with click counts the store never took");
                    metrics::counter!("akti_clicks_lost_total", "reason" => "shutdown")
                        .increment(flush.taken.links.values().map(|l| l.count.clicks + l.count.bot_clicks).sum());
                }
                return;
            }
        }
    }
}

/// The counts being written, and the id that makes writing them idempotent.
///
/// A write that timed out may still run in the store (a frozen Redis runs what it had
/// received once it resumes), so the same counts are written again under the same id and
/// the store applies them once: a failed batch is kept whole and retried before any newer
/// counts are taken.
///
/// The counts of an interval are swapped with `taken`, maps that kept room for the interval
/// before and are emptied again after the write (see [`ClickCounts::clear`]): the redirects
/// do not grow fresh maps under their lock, and no map of tens of thousands of links is
/// allocated and freed four times a second (memory the allocator would keep resident).
#[derive(Default)]
struct CountFlush {
    taken: ClickCounts,
    /// The id of `taken` when a write of it failed.
    unwritten: Option<String>,
}

impl CountFlush {
    async fn write(&mut self, store: &dyn ClickStore, known: &Known) {
        if self.unwritten.is_none() {
            let mut current = known.counts.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::swap(&mut *current, &mut self.taken);
            drop(current);
            if self.taken.is_empty() {
                return;
            }
            self.unwritten = Some(random_id("cnt_", 20));
        }
        let batch = self.unwritten.as_deref().unwrap_or_default();
        match store.add_click_counts(batch, &self.taken).await {
            Ok(()) => {
                self.unwritten = None;
                self.taken.clear();
            }
            Err(e) => {
                tracing::warn!(error = %e, links = self.taken.links.len(), "store unavailable: keeping click counts");
            }
        }
    }
}
