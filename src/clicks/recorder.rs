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

use crate::domain::{CampaignId, ShortCode, random_id};
use crate::store::health::{STALL_AFTER, StoreHealth};
use crate::store::{ClickCounts, ClickOutcome, Counted, LeadClick, Store, StoreError};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
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
    pub fn spawn(
        store: Arc<dyn Store>,
        window: Duration,
        health: Arc<StoreHealth>,
    ) -> (Self, JoinHandle<()>) {
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
        let task = tokio::spawn(run(
            store,
            receiver,
            Shared {
                counts,
                windows,
                health,
            },
        ));
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
    health: Arc<StoreHealth>,
}

/// A write of lead clicks the store has not answered yet.
struct Write {
    clicks: Vec<LeadClick>,
    /// Handlers waiting for these clicks; released when the write is answered, or once it
    /// has taken [`STALL_AFTER`] (the clicks are then kept until the store answers).
    waiters: Vec<oneshot::Sender<()>>,
    /// Whether the clicks are the front of the outage buffer (they stay there until
    /// written) rather than fresh ones.
    from_buffer: bool,
    started: tokio::time::Instant,
    answer: BoxFuture<'static, Result<Vec<ClickOutcome>, StoreError>>,
}

impl Write {
    fn start(
        store: &Arc<dyn Store>,
        clicks: Vec<LeadClick>,
        waiters: Vec<oneshot::Sender<()>>,
        from_buffer: bool,
    ) -> Self {
        let (store, batch) = (store.clone(), clicks.clone());
        Self {
            clicks,
            waiters,
            from_buffer,
            started: tokio::time::Instant::now(),
            answer: Box::pin(async move { store.record_lead_clicks(&batch).await }),
        }
    }

    fn release(&mut self) {
        for done in self.waiters.drain(..) {
            let _ = done.send(());
        }
    }
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
    let mut writing: Option<Write> = None;
    let mut tick = tokio::time::interval(COUNT_FLUSH);
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    let mut open = true;
    while open || writing.is_some() {
        // While the store keeps up, new clicks wait in the channel for the write in flight
        // (they form the next batch); while it is stalled, they are buffered at once.
        let taking = open && (writing.is_none() || state.health.is_stalled());
        let slow_at = (writing.as_ref())
            .filter(|w| !w.waiters.is_empty())
            .map(|w| w.started + STALL_AFTER);
        tokio::select! {
            received = receiver.recv_many(&mut batch, MAX_BATCH), if taking => {
                if received == 0 {
                    open = false;
                    continue;
                }
                let (clicks, waiters): (Vec<_>, Vec<_>) =
                    batch.drain(..).map(|p| (p.click, p.done)).unzip();
                if writing.is_none() && buffered.is_empty() {
                    writing = Some(Write::start(&store, clicks, waiters, false));
                } else {
                    // Nothing overtakes what is already waiting for the store.
                    buffer(&mut buffered, clicks);
                    for done in waiters {
                        let _ = done.send(());
                    }
                }
            }
            answer = async { (&mut writing.as_mut().expect("guarded").answer).await }, if writing.is_some() => {
                let mut write = writing.take().expect("guarded");
                write.release();
                match answer {
                    Ok(outcomes) => {
                        state.health.answered();
                        remember(&state, &write.clicks, &outcomes);
                        if write.from_buffer {
                            buffered.drain(..write.clicks.len());
                        }
                    }
                    Err(e) => {
                        state.health.stalled();
                        tracing::warn!(error = %e, clicks = write.clicks.len(), "store unavailable: buffering clicks");
                        if !write.from_buffer {
                            // Older than anything buffered while they were in flight.
                            for click in write.clicks.into_iter().rev() {
                                buffered.push_front(click);
                            }
                            metrics::gauge!("akti_clicks_buffered").set(buffered.len() as f64);
                        }
                    }
                }
                if !state.health.is_stalled() {
                    writing = flush_next(&store, &buffered);
                }
            }
            () = sleep_until_some(slow_at) => {
                // The store is slow: the handlers go now, the clicks stay in flight, and
                // new clicks are buffered until it answers.
                state.health.stalled();
                if let Some(write) = writing.as_mut() {
                    write.release();
                }
            }
            _ = tick.tick() => {
                match &writing {
                    // A write still unanswered past its moment: the stall goes on.
                    Some(write) if write.started.elapsed() >= STALL_AFTER => state.health.stalled(),
                    Some(_) => {}
                    None => writing = flush_next(&store, &buffered),
                }
            }
        }
    }
    // The last clicks: one more try for what the store has not taken.
    while let Some(write) = flush_next(&store, &buffered) {
        let Ok(outcomes) = write.answer.await else {
            break;
        };
        remember(&state, &write.clicks, &outcomes);
        buffered.drain(..write.clicks.len());
    }
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

/// A write of the front of the outage buffer, if there is one.
fn flush_next(store: &Arc<dyn Store>, buffered: &VecDeque<LeadClick>) -> Option<Write> {
    if buffered.is_empty() {
        return None;
    }
    let front = buffered.iter().take(MAX_BATCH).cloned().collect();
    Some(Write::start(store, front, Vec::new(), true))
}

async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
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
    let mut flush = CountFlush::default();
    loop {
        tokio::select! {
            _ = tick.tick() => flush.write(store.as_ref(), &counts).await,
            _ = &mut stop => {
                flush.write(store.as_ref(), &counts).await;
                if let Some(unwritten) = &flush.unwritten {
                    tracing::error!(batch = %unwritten, "stopping with click counts the store never took");
                    metrics::counter!("akti_clicks_lost_total", "reason" => "shutdown")
                        .increment(flush.taken.links.values().map(|c| c.clicks + c.bot_clicks).sum());
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
    async fn write(&mut self, store: &dyn Store, counts: &Mutex<ClickCounts>) {
        if self.unwritten.is_none() {
            let mut current = counts.lock().unwrap_or_else(|p| p.into_inner());
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
