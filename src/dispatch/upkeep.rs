//! The tasks that run beside the dispatcher's claim loop: the finisher that writes
//! outcomes, the heartbeat, and the queue's gauges.

use super::{FINISH_BATCH, Finished};
use crate::store::Outbox;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How often a dispatcher says it is alive, and how long each saying lasts: a dead
/// instance's deliveries are taken over within about `HEARTBEAT_TTL` and a second (the
/// contract allows ten), while a few missed writes do not make a live one look dead.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
const HEARTBEAT_TTL: Duration = Duration::from_secs(5);

/// Writes outcomes in batches, retrying while the store is unreachable: the deliveries
/// stay leased meanwhile, so giving up would only send them again later.
pub(super) async fn write_outcomes(store: Arc<dyn Outbox>, mut outcomes: mpsc::Receiver<Finished>) {
    let mut batch = Vec::with_capacity(FINISH_BATCH);
    while outcomes.recv_many(&mut batch, FINISH_BATCH).await > 0 {
        let mut wait = Duration::from_millis(100);
        loop {
            match store.finish_deliveries(&batch).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, outcomes = batch.len(), "cannot record delivery outcomes; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
            }
        }
        batch.clear();
    }
}

/// Publishes the queue's depth and the age of its oldest pending delivery.
pub(super) async fn report_queue(store: Arc<dyn Outbox>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Ok(depth) = store.queue_depth().await {
            metrics::gauge!("akti_webhook_queue_depth").set(depth.pending as f64);
            metrics::gauge!("akti_webhook_oldest_pending_seconds")
                .set(depth.oldest.map_or(0.0, |d| d.as_secs_f64()));
        }
    }
}

/// Says every [`HEARTBEAT_EVERY`] that this dispatcher is alive, until `alive` is
/// cancelled: when it stops saying so (the process died), other instances take its
/// deliveries over within [`HEARTBEAT_TTL`] rather than after their lease.
pub(super) async fn keep_alive(store: Arc<dyn Outbox>, consumer: String, alive: CancellationToken) {
    let mut every = tokio::time::interval(HEARTBEAT_EVERY);
    loop {
        tokio::select! {
            () = alive.cancelled() => return,
            _ = every.tick() => {
                if let Err(e) = store.keep_alive(&consumer, HEARTBEAT_TTL).await {
                    tracing::debug!(error = %e, "heartbeat not written");
                }
            }
        }
    }
}
