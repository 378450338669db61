//! The click recorder: turns redirects into durable clicks, in batches.
//!
//! A lead's human click goes through one task ([`super::lead_writes`]) and a bounded
//! channel. The task takes every click waiting and writes them in one store call (one
//! Redis round trip of pipelined scripts, or one SQLite transaction): group commit, so that
//! durability costs one round trip per batch rather than per click. The handler waits for
//! its batch, so the `302` is sent only once the click's event is durable.
//!
//! Two things keep the store off the path of most redirects:
//! - Clicks that only count (bots, previews, links without a lead) are summed in memory
//!   and written every [`COUNT_FLUSH`] ([`super::counts`]); nobody waits for them.
//! - Every answer from the store tells when the lead's window opened; the waiting handler
//!   keeps that on the cached link ([`crate::cache::CachedLink::in_open_window`]). While
//!   that window is open, a repeat click on this instance is known to emit nothing, so it
//!   only counts.
//!
//! While the store is unreachable or stalled, lead clicks wait in a bounded in-memory
//! buffer and the handlers are released (the contract's outage rule: cached links keep
//! redirecting). What does not fit is counted in `akti_clicks_lost_total`.

use super::{counts, lead_writes};
use crate::domain::analytics::Os;
use crate::domain::{CampaignId, ClickCounts, ClickOutcome, Counted, LeadClick};
use crate::store::ClickStore;
use crate::store::health::StoreHealth;
use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Lead clicks waiting for the recorder before handlers wait for room.
const QUEUE: usize = 16_384;
/// How often counts are written, and a buffered outage retried.
pub const COUNT_FLUSH: Duration = Duration::from_millis(250);
/// Most links with unwritten counts; beyond, counts are lost (and counted as such).
const MAX_COUNTED_LINKS: usize = 200_000;

/// A lead click and its waiting handler.
pub(super) struct Pending {
    pub click: LeadClick,
    pub done: Done,
}

/// Tells a waiting handler that its click is durable (or buffered), with when the lead's
/// window opened if the store said so.
pub(super) type Done = oneshot::Sender<Option<DateTime<Utc>>>;

/// The handle redirects use; cheap to clone.
#[derive(Clone)]
pub struct ClickRecorder {
    queue: mpsc::Sender<Pending>,
    known: Arc<Known>,
}

/// What the recorder's tasks learn and the redirects read.
pub(super) struct Known {
    /// Unwritten counts. A std mutex: held to add one click or to swap the map, never
    /// across an await.
    pub counts: Mutex<ClickCounts>,
    pub window: Duration,
    pub health: Arc<StoreHealth>,
}

impl ClickRecorder {
    /// Starts the recorder's tasks. They end, after writing what they hold, when every
    /// `ClickRecorder` clone has been dropped.
    pub fn spawn(
        store: Arc<dyn ClickStore>,
        window: Duration,
        health: Arc<StoreHealth>,
    ) -> (Self, JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let known = Arc::new(Known {
            counts: Mutex::default(),
            window,
            health,
        });
        let task = tokio::spawn(run(store, receiver, known.clone()));
        (Self { queue, known }, task)
    }

    /// The dedup window.
    pub fn window(&self) -> Duration {
        self.known.window
    }

    /// Records a lead click and returns once it is durable, or buffered through an outage;
    /// with when the lead's window opened, if the store has answered.
    pub async fn record_lead(&self, click: LeadClick) -> Option<DateTime<Utc>> {
        let (done, wait) = oneshot::channel();
        self.queue.send(Pending { click, done }).await.ok()?;
        wait.await.ok().flatten()
    }

    /// Counts a click nobody waits for.
    pub fn count(
        &self,
        code: &str,
        campaign: &CampaignId,
        counted: Counted,
        os: Os,
        at: DateTime<Utc>,
    ) {
        self.known.count(code, campaign, counted, os, at);
    }
}

/// The lead clicks' writer, and the counts' beside it: a large flush of counts never holds
/// up the lead clicks waiting for durability.
async fn run(store: Arc<dyn ClickStore>, receiver: mpsc::Receiver<Pending>, known: Arc<Known>) {
    let (stop_counts, stopped) = oneshot::channel();
    let counts = tokio::spawn(counts::write_every(store.clone(), known.clone(), stopped));
    lead_writes::run(store, receiver, &known).await;
    // The last counts, including those of the clicks just written.
    let _ = stop_counts.send(());
    let _ = counts.await;
}

impl Known {
    pub(super) fn count(
        &self,
        code: &str,
        campaign: &CampaignId,
        counted: Counted,
        os: Os,
        at: DateTime<Utc>,
    ) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.links.len() >= MAX_COUNTED_LINKS && !counts.links.contains_key(code) {
            metrics::counter!("akti_clicks_lost_total", "reason" => "counts_full").increment(1);
            return;
        }
        counts.add(code, campaign, counted, os, at);
    }

    /// Counts the written clicks.
    pub(super) fn counted(&self, clicks: &[LeadClick], outcomes: &[ClickOutcome]) {
        let mut emitted = 0;
        for (click, outcome) in clicks.iter().zip(outcomes) {
            let counted = match outcome {
                ClickOutcome::Emitted => {
                    emitted += 1;
                    Counted::HumanWithEvent
                }
                ClickOutcome::Deduplicated { .. } => Counted::Human,
            };
            self.count(
                click.code.as_str(),
                &click.campaign_id,
                counted,
                click.os,
                click.at,
            );
        }
        let outcome =
            |name: &'static str| metrics::counter!("akti_clicks_recorded_total", "outcome" => name);
        outcome("emitted").increment(emitted);
        outcome("deduplicated").increment(clicks.len() as u64 - emitted);
    }
}
