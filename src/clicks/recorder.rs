//! The click recorder: turns redirects into durable clicks, in batches.
//!
//! A lead's human click goes through one task and a bounded channel. The task takes every
//! click waiting and writes them in one store call (one Redis round trip of pipelined
//! scripts, or one SQLite transaction): group commit, so that durability costs one round
//! trip per batch rather than per click. The handler waits for its batch, so the `302` is
//! sent only once the click's event is durable.
//!
//! Two things keep the store off the path of most redirects:
//! - Clicks that only count (bots, previews, links without a lead) are summed in memory
//!   and written every [`COUNT_FLUSH`]; nobody waits for them.
//! - Every answer from the store tells when the lead's window opened. While that window is
//!   open, a repeat click on this instance is known to emit nothing, so it only counts
//!   (windows never close early, so this is exact, whatever other instances do).
//!
//! While the store is unreachable, lead clicks wait in a bounded in-memory buffer and the
//! handlers are released at once (the contract's outage rule: cached links keep
//! redirecting). The buffer is written, in order, when the store is back; what does not fit
//! is counted in `akti_clicks_lost_total`, as are counts that cannot be kept.

use crate::domain::{CampaignId, ShortCode};
use crate::store::{ClickCounts, ClickOutcome, Counted, LeadClick, Store};
use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Most lead clicks written in one store call.
const MAX_BATCH: usize = 512;
/// Lead clicks waiting for the recorder before handlers wait for room.
const QUEUE: usize = 16_384;
/// Lead clicks kept through a store outage.
const OUTAGE_BUFFER: usize = 100_000;
/// How often counts are written, and a buffered outage retried.
pub const COUNT_FLUSH: Duration = Duration::from_millis(250);
/// Most links with unwritten counts; beyond, counts are lost (and counted as such).
const MAX_COUNTED_LINKS: usize = 200_000;
/// Most lead windows remembered per instance.
const KNOWN_WINDOWS: u64 = 200_000;

struct Pending {
    click: LeadClick,
    done: oneshot::Sender<()>,
}

#[derive(Clone)]
pub struct ClickRecorder {
    queue: mpsc::Sender<Pending>,
    /// Unwritten counts. A std mutex: held to add one click or to swap the map, never
    /// across an await.
    counts: Arc<Mutex<ClickCounts>>,
    /// When each recently clicked lead's window opened (unix ms, click time).
    windows: moka::sync::Cache<ShortCode, i64, ahash::RandomState>,
    window: Duration,
}

impl ClickRecorder {
    /// Starts the recorder task. It ends, after writing what it holds, when every
    /// `ClickRecorder` clone has been dropped.
    pub fn spawn(store: Arc<dyn Store>, window: Duration) -> (Self, JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let counts = Arc::new(Mutex::new(ClickCounts::default()));
        let windows = moka::sync::Cache::builder()
            .max_capacity(KNOWN_WINDOWS)
            .time_to_live(window)
            .build_with_hasher(ahash::RandomState::new());
        let recorder = Self {
            queue,
            counts: counts.clone(),
            windows: windows.clone(),
            window,
        };
        let task = tokio::spawn(run(store, receiver, Shared { counts, windows }));
        (recorder, task)
    }

    /// Whether a lead click on `code` at `at` falls in a window this instance knows open.
    pub fn in_open_window(&self, code: &str, at: DateTime<Utc>) -> bool {
        let window = self.window.as_millis() as i64;
        self.windows
            .get(code)
            .is_some_and(|opened| at.timestamp_millis() < opened + window)
    }

    /// Records a lead click and returns once it is durable, or buffered through an outage.
    pub async fn record_lead(&self, click: LeadClick) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Pending { click, done }).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Counts a click nobody waits for.
    pub fn count(&self, code: &str, campaign: &CampaignId, counted: Counted, at: DateTime<Utc>) {
        add_count(&self.counts, code, campaign, counted, at);
    }
}

fn add_count(
    counts: &Mutex<ClickCounts>,
    code: &str,
    campaign: &CampaignId,
    counted: Counted,
    at: DateTime<Utc>,
) {
    let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
    if counts.links.len() >= MAX_COUNTED_LINKS && !counts.links.contains_key(code) {
        metrics::counter!("akti_clicks_lost_total", "reason" => "counts_full").increment(1);
        return;
    }
    counts.add(code, campaign, counted, at);
}

/// What the task shares with the handles.
struct Shared {
    counts: Arc<Mutex<ClickCounts>>,
    windows: moka::sync::Cache<ShortCode, i64, ahash::RandomState>,
}

async fn run(store: Arc<dyn Store>, mut receiver: mpsc::Receiver<Pending>, state: Shared) {
    // Counts are written by their own task, so that a large flush never holds up the lead
    // clicks waiting for durability.
    let (stop_counts, stopped) = oneshot::channel();
    let counts = tokio::spawn(write_counts_every(
        store.clone(),
        state.counts.clone(),
        stopped,
    ));
    let mut buffered: VecDeque<LeadClick> = VecDeque::new();
    let mut tick = tokio::time::interval(COUNT_FLUSH);
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    loop {
        tokio::select! {
            received = receiver.recv_many(&mut batch, MAX_BATCH) => {
                if received == 0 {
                    break;
                }
            }
            _ = tick.tick() => {
                if !buffered.is_empty() {
                    flush_buffer(store.as_ref(), &mut buffered, &state).await;
                }
                continue;
            }
        }
        let (clicks, waiters): (Vec<_>, Vec<_>) =
            batch.drain(..).map(|p| (p.click, p.done)).unzip();
        if !buffered.is_empty() {
            flush_buffer(store.as_ref(), &mut buffered, &state).await;
        }
        if buffered.is_empty() {
            match store.record_lead_clicks(&clicks).await {
                Ok(outcomes) => remember(&state, &clicks, &outcomes),
                Err(e) => {
                    tracing::warn!(error = %e, clicks = clicks.len(), "store unavailable: buffering clicks");
                    buffer(&mut buffered, clicks);
                }
            }
        } else {
            // Keep the order of clicks: nothing overtakes what is already buffered.
            buffer(&mut buffered, clicks);
        }
        for done in waiters {
            let _ = done.send(());
        }
    }
    flush_buffer(store.as_ref(), &mut buffered, &state).await;
    // The last counts, including those of the clicks just written.
    let _ = stop_counts.send(());
    let _ = counts.await;
    if !buffered.is_empty() {
        tracing::error!(
            clicks = buffered.len(),
            "stopping with clicks the store never took"
        );
        metrics::counter!("akti_clicks_lost_total", "reason" => "shutdown")
            .increment(buffered.len() as u64);
    }
}

/// Learns when each clicked lead's window opened, and counts the clicks.
fn remember(state: &Shared, clicks: &[LeadClick], outcomes: &[ClickOutcome]) {
    let now = Utc::now().timestamp_millis();
    let mut emitted = 0;
    for (click, outcome) in clicks.iter().zip(outcomes) {
        let (opened, counted) = match outcome {
            ClickOutcome::Emitted => {
                emitted += 1;
                (click.at.timestamp_millis(), Counted::HumanWithEvent)
            }
            ClickOutcome::Deduplicated { window_opened_at } => {
                (window_opened_at.timestamp_millis(), Counted::Human)
            }
        };
        // A window that has already closed says nothing about later clicks; with short
        // windows, remembering it would only cost a cache insert per click.
        if opened + click.window.as_millis() as i64 > now {
            state.windows.insert(click.code.clone(), opened);
        }
        add_count(
            &state.counts,
            click.code.as_str(),
            &click.campaign_id,
            counted,
            click.at,
        );
    }
    let outcome =
        |name: &'static str| metrics::counter!("akti_clicks_recorded_total", "outcome" => name);
    outcome("emitted").increment(emitted);
    outcome("deduplicated").increment(clicks.len() as u64 - emitted);
}

/// Writes the summed counts every [`COUNT_FLUSH`], and once more when told to stop.
async fn write_counts_every(
    store: Arc<dyn Store>,
    counts: Arc<Mutex<ClickCounts>>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut tick = tokio::time::interval(COUNT_FLUSH);
    let mut spare = ClickCounts::default();
    loop {
        tokio::select! {
            _ = tick.tick() => write_counts(store.as_ref(), &counts, &mut spare).await,
            _ = &mut stop => {
                write_counts(store.as_ref(), &counts, &mut spare).await;
                return;
            }
        }
    }
}

/// Writes the summed counts; on failure keeps them for the next flush.
///
/// The counts of the interval are swapped with `spare`, empty maps that kept room for the
/// interval before and are emptied again after the write (see [`ClickCounts::clear`]):
/// the redirects do not grow fresh maps under their lock, and no map of tens of thousands
/// of links is allocated and freed four times a second (memory the allocator would keep
/// resident).
async fn write_counts(store: &dyn Store, counts: &Mutex<ClickCounts>, spare: &mut ClickCounts) {
    {
        let mut current = counts.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::swap(&mut *current, spare);
    }
    let taken = spare;
    if taken.is_empty() {
        return;
    }
    if let Err(e) = store.add_click_counts(taken).await {
        tracing::warn!(error = %e, links = taken.links.len(), "store unavailable: keeping click counts");
        let mut current = counts.lock().unwrap_or_else(|p| p.into_inner());
        let lost = taken.links.len() + current.links.len() > MAX_COUNTED_LINKS;
        if lost {
            metrics::counter!("akti_clicks_lost_total", "reason" => "counts_full")
                .increment(taken.links.values().map(|c| c.clicks + c.bot_clicks).sum());
        } else {
            current.merge(taken);
        }
    }
    taken.clear();
}

fn buffer(buffered: &mut VecDeque<LeadClick>, clicks: Vec<LeadClick>) {
    for click in clicks {
        if buffered.len() >= OUTAGE_BUFFER {
            metrics::counter!("akti_clicks_lost_total", "reason" => "buffer_full").increment(1);
            continue;
        }
        buffered.push_back(click);
    }
    metrics::gauge!("akti_clicks_buffered").set(buffered.len() as f64);
}

async fn flush_buffer(store: &dyn Store, buffered: &mut VecDeque<LeadClick>, state: &Shared) {
    while !buffered.is_empty() {
        let n = buffered.len().min(MAX_BATCH);
        let chunk: Vec<LeadClick> = buffered.iter().take(n).cloned().collect();
        match store.record_lead_clicks(&chunk).await {
            Ok(outcomes) => {
                remember(state, &chunk, &outcomes);
                buffered.drain(..n);
            }
            Err(_) => break,
        }
    }
    metrics::gauge!("akti_clicks_buffered").set(buffered.len() as f64);
}
