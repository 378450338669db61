//! Writing lead clicks: one batch at a time while the store keeps up; while it does not
//! (a call failed, or has taken [`STALL_AFTER`]), handlers are released at once and their
//! clicks wait in a bounded buffer, written in order when the store answers again.

use super::recorder::{Done, Known, Pending};
use crate::domain::{ClickOutcome, LeadClick};
use crate::store::health::STALL_AFTER;
use crate::store::{ClickStore, StoreError};
use futures::future::BoxFuture;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Most lead clicks written in one store call.
const MAX_BATCH: usize = 512;
/// Lead clicks kept through a store outage.
const OUTAGE_BUFFER: usize = 100_000;

/// A write of lead clicks the store has not answered yet.
struct Write {
    clicks: Vec<LeadClick>,
    /// Handlers waiting for these clicks, in their order; released when the write is
    /// answered, or once it has taken [`STALL_AFTER`] (the clicks are then kept until the
    /// store answers).
    waiters: Vec<Done>,
    /// Whether the clicks are the front of the buffer (they stay there until written)
    /// rather than fresh ones.
    from_buffer: bool,
    started: tokio::time::Instant,
    answer: BoxFuture<'static, Result<Vec<ClickOutcome>, StoreError>>,
}

impl Write {
    fn release(&mut self) {
        release(self.waiters.drain(..));
    }

    /// Releases the handlers with when their leads' windows opened.
    fn answer(&mut self, outcomes: &[ClickOutcome]) {
        let opened = (outcomes.iter().zip(&self.clicks)).map(|(o, c)| o.window_opened_at(c.at));
        for (done, opened) in self.waiters.drain(..).zip(opened) {
            let _ = done.send(Some(opened));
        }
    }
}

fn release(waiters: impl IntoIterator<Item = Done>) {
    for done in waiters {
        let _ = done.send(None);
    }
}

struct Writer<'a> {
    store: Arc<dyn ClickStore>,
    known: &'a Known,
    buffered: VecDeque<LeadClick>,
    writing: Option<Write>,
}

/// Writes lead clicks from `receiver` until every sender is gone and what was taken is
/// written (or, if the store is out, counted as lost).
pub(super) async fn run(
    store: Arc<dyn ClickStore>,
    mut receiver: mpsc::Receiver<Pending>,
    known: &Known,
) {
    let mut writer = Writer {
        store,
        known,
        buffered: VecDeque::new(),
        writing: None,
    };
    let mut tick = tokio::time::interval(super::recorder::COUNT_FLUSH);
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    let mut open = true;
    while open || writer.writing.is_some() {
        // While the store keeps up, new clicks wait in the channel for the write in flight
        // (they form the next batch); while it is stalled, they are buffered at once.
        let taking = open && (writer.writing.is_none() || known.health.is_stalled());
        let slow_at = (writer.writing.as_ref())
            .filter(|w| !w.waiters.is_empty())
            .map(|w| w.started + STALL_AFTER);
        let writing = writer.writing.is_some();
        tokio::select! {
            received = receiver.recv_many(&mut batch, MAX_BATCH), if taking => {
                open = received > 0;
                writer.take(batch.drain(..));
            }
            answer = async { (&mut writer.writing.as_mut().expect("guarded").answer).await }, if writing => {
                writer.answered(answer);
            }
            () = sleep_until_some(slow_at) => writer.slow(),
            _ = tick.tick() => writer.tick(),
        }
    }
    writer.flush_at_stop().await;
}

impl Writer<'_> {
    fn take(&mut self, pending: impl Iterator<Item = Pending>) {
        let (clicks, waiters): (Vec<_>, Vec<_>) = pending.map(|p| (p.click, p.done)).unzip();
        if clicks.is_empty() {
            return;
        }
        if self.writing.is_none() && self.buffered.is_empty() {
            self.writing = Some(self.start(clicks, waiters, false));
        } else {
            // Nothing overtakes what is already waiting for the store.
            self.buffer(clicks);
            release(waiters);
        }
    }

    fn answered(&mut self, answer: Result<Vec<ClickOutcome>, StoreError>) {
        let Some(mut write) = self.writing.take() else {
            return;
        };
        match answer {
            Ok(outcomes) => {
                write.answer(&outcomes);
                self.known.health.answered();
                self.known.counted(&write.clicks, &outcomes);
                if write.from_buffer {
                    self.buffered.drain(..write.clicks.len());
                }
            }
            Err(e) => {
                write.release();
                self.known.health.stalled();
                tracing::warn!(error = %e, clicks = write.clicks.len(), "store unavailable: buffering clicks");
                if !write.from_buffer {
                    // Older than anything buffered while they were in flight.
                    for click in write.clicks.into_iter().rev() {
                        self.buffered.push_front(click);
                    }
                }
            }
        }
        metrics::gauge!("akti_clicks_buffered").set(self.buffered.len() as f64);
        if !self.known.health.is_stalled() {
            self.writing = self.flush_next();
        }
    }

    /// The store is slow: the handlers go now, the clicks stay in flight, and new clicks
    /// are buffered until it answers.
    fn slow(&mut self) {
        self.known.health.stalled();
        if let Some(write) = self.writing.as_mut() {
            write.release();
        }
    }

    fn tick(&mut self) {
        match &self.writing {
            // A write still unanswered past its moment: the stall goes on.
            Some(write) if write.started.elapsed() >= STALL_AFTER => self.known.health.stalled(),
            Some(_) => {}
            None => self.writing = self.flush_next(),
        }
    }

    fn start(&self, clicks: Vec<LeadClick>, waiters: Vec<Done>, from_buffer: bool) -> Write {
        let (store, batch, window) = (self.store.clone(), clicks.clone(), self.known.window);
        Write {
            clicks,
            waiters,
            from_buffer,
            started: tokio::time::Instant::now(),
            answer: Box::pin(async move { store.record_lead_clicks(&batch, window).await }),
        }
    }

    /// A write of the front of the buffer, if there is one.
    fn flush_next(&self) -> Option<Write> {
        if self.buffered.is_empty() {
            return None;
        }
        let front = self.buffered.iter().take(MAX_BATCH).cloned().collect();
        Some(self.start(front, Vec::new(), true))
    }

    fn buffer(&mut self, clicks: Vec<LeadClick>) {
        for click in clicks {
            if self.buffered.len() >= OUTAGE_BUFFER {
                metrics::counter!("akti_clicks_lost_total", "reason" => "buffer_full").increment(1);
                continue;
            }
            self.buffered.push_back(click);
        }
        metrics::gauge!("akti_clicks_buffered").set(self.buffered.len() as f64);
    }

    /// The last clicks: one more try for what the store has not taken.
    async fn flush_at_stop(&mut self) {
        while let Some(write) = self.flush_next() {
            let Ok(outcomes) = write.answer.await else {
                break;
            };
            self.known.counted(&write.clicks, &outcomes);
            self.buffered.drain(..write.clicks.len());
        }
        if !self.buffered.is_empty() {
            tracing::error!(
                clicks = self.buffered.len(),
                "stopping with clicks the store never took"
            );
            metrics::counter!("akti_clicks_lost_total", "reason" => "shutdown")
                .increment(self.buffered.len() as u64);
        }
    }
}

async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
