//! The click recorder: turns redirects into durable clicks, in batches.
//!
//! Handlers hand their clicks to one task through a bounded channel. The task takes every
//! click waiting and writes them in one store call (one Redis round trip of pipelined
//! scripts, or one SQLite transaction): group commit, so that durability costs one round
//! trip per batch rather than per click. A lead click's handler waits for its batch, so
//! its `302` is sent only once its event is durable.
//!
//! While the store is unreachable, clicks wait in a bounded in-memory buffer and the
//! handlers are released at once (the contract's outage rule: cached links keep
//! redirecting). The buffer is written, in order, when the store is back; what does not fit
//! is counted in `akti_clicks_lost_total`.

use crate::store::{ClickOutcome, ClickRecord, Store};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Most clicks written in one store call.
const MAX_BATCH: usize = 512;
/// Clicks waiting for the recorder before handlers wait for room.
const QUEUE: usize = 16_384;
/// Clicks kept through a store outage.
const OUTAGE_BUFFER: usize = 100_000;
/// How often a buffered outage is retried.
const OUTAGE_RETRY: Duration = Duration::from_millis(500);

struct Pending {
    record: ClickRecord,
    /// Told when the click is durable (or buffered); `None` for counts nobody waits on.
    done: Option<oneshot::Sender<()>>,
}

#[derive(Clone)]
pub struct ClickRecorder {
    queue: mpsc::Sender<Pending>,
}

impl ClickRecorder {
    /// Starts the recorder task. It ends, after a last attempt to write its buffer, when
    /// every `ClickRecorder` clone has been dropped.
    pub fn spawn(store: Arc<dyn Store>) -> (Self, JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(store, receiver));
        (Self { queue }, task)
    }

    /// Records a click and returns once it is durable, or buffered through an outage.
    pub async fn record_durably(&self, record: ClickRecord) {
        let (done, wait) = oneshot::channel();
        if self
            .queue
            .send(Pending {
                record,
                done: Some(done),
            })
            .await
            .is_ok()
        {
            let _ = wait.await;
        }
    }

    /// Records a click nobody waits for (bots, links without a lead).
    pub fn record(&self, record: ClickRecord) {
        if self.queue.try_send(Pending { record, done: None }).is_err() {
            metrics::counter!("akti_clicks_lost_total", "reason" => "queue_full").increment(1);
        }
    }
}

async fn run(store: Arc<dyn Store>, mut receiver: mpsc::Receiver<Pending>) {
    let mut buffered: VecDeque<ClickRecord> = VecDeque::new();
    loop {
        let first = if buffered.is_empty() {
            receiver.recv().await
        } else {
            match tokio::time::timeout(OUTAGE_RETRY, receiver.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    flush_buffer(store.as_ref(), &mut buffered).await;
                    continue;
                }
            }
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        if !buffered.is_empty() {
            flush_buffer(store.as_ref(), &mut buffered).await;
        }
        let (records, waiters): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|p| (p.record, p.done)).unzip();
        if buffered.is_empty() {
            match store.record_clicks(&records).await {
                Ok(outcomes) => count(&outcomes),
                Err(e) => {
                    tracing::warn!(error = %e, clicks = records.len(), "store unavailable: buffering clicks");
                    buffer(&mut buffered, records);
                }
            }
        } else {
            // Keep the order of clicks: nothing overtakes what is already buffered.
            buffer(&mut buffered, records);
        }
        for done in waiters.into_iter().flatten() {
            let _ = done.send(());
        }
    }
    flush_buffer(store.as_ref(), &mut buffered).await;
    if !buffered.is_empty() {
        tracing::error!(
            clicks = buffered.len(),
            "stopping with clicks the store never took"
        );
        metrics::counter!("akti_clicks_lost_total", "reason" => "shutdown")
            .increment(buffered.len() as u64);
    }
}

fn buffer(buffered: &mut VecDeque<ClickRecord>, records: Vec<ClickRecord>) {
    for record in records {
        if buffered.len() >= OUTAGE_BUFFER {
            metrics::counter!("akti_clicks_lost_total", "reason" => "buffer_full").increment(1);
            continue;
        }
        buffered.push_back(record);
    }
    metrics::gauge!("akti_clicks_buffered").set(buffered.len() as f64);
}

async fn flush_buffer(store: &dyn Store, buffered: &mut VecDeque<ClickRecord>) {
    while !buffered.is_empty() {
        let n = buffered.len().min(MAX_BATCH);
        let chunk: Vec<ClickRecord> = buffered.iter().take(n).cloned().collect();
        match store.record_clicks(&chunk).await {
            Ok(outcomes) => {
                count(&outcomes);
                buffered.drain(..n);
            }
            Err(_) => break,
        }
    }
    metrics::gauge!("akti_clicks_buffered").set(buffered.len() as f64);
}

fn count(outcomes: &[ClickOutcome]) {
    for outcome in outcomes {
        let name = match outcome {
            ClickOutcome::Counted => "counted",
            ClickOutcome::Deduplicated => "deduplicated",
            ClickOutcome::Emitted => "emitted",
        };
        metrics::counter!("akti_clicks_recorded_total", "outcome" => name).increment(1);
    }
}
