//! The webhook dispatcher: takes due deliveries from the store, sends them, and records
//! the outcome.
//!
//! Every instance runs one. Deliveries are leased from the store (Redis: a stream read by
//! the consumer group all instances share; SQLite: a lease column), so each is sent by one
//! instance at a time; a lease left by a crashed instance is taken over once it has been
//! idle longer than an attempt can last. A delivery is acknowledged only after its outcome
//! is written: a crash in between sends it again (at-least-once).
//!
//! Each subscription may have at most [`PER_SUBSCRIPTION`] attempts in flight; a delivery
//! beyond that is put back for a moment instead of waiting, so that a subscriber that hangs
//! holds only its own slots and never delays the others.

pub mod attempt;
pub mod schedule;
pub mod signing;
pub mod ssrf;

use crate::config::Config;
use crate::store::{DeliveryOutcome, DeliveryTask, Store};
use attempt::Verdict;
use schedule::RetrySchedule;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Attempts in flight per subscription.
pub const PER_SUBSCRIPTION: usize = 16;
/// Attempts in flight per instance.
const IN_FLIGHT: usize = 512;
/// Most deliveries leased in one claim.
const CLAIM_BATCH: usize = 128;
/// How long a claim waits for work before looking again.
const CLAIM_WAIT: Duration = Duration::from_millis(500);
/// How long a delivery over its subscription's cap waits before it is looked at again.
const DEFER: Duration = Duration::from_millis(200);

pub struct Dispatcher {
    store: Arc<dyn Store>,
    client: reqwest::Client,
    schedule: RetrySchedule,
    timeout: Duration,
    allow_private: bool,
    /// This instance's name in the consumer group.
    consumer: String,
    in_flight: Arc<Semaphore>,
    /// A std mutex: held only to look up or insert, never across an await.
    per_subscription: Mutex<HashMap<String, Arc<Semaphore>>>,
    tracker: TaskTracker,
}

impl Dispatcher {
    pub fn new(store: Arc<dyn Store>, config: &Config) -> Arc<Self> {
        Arc::new(Self {
            store,
            client: attempt::client(config.webhook_allow_private),
            schedule: RetrySchedule::new(config.webhook_retry_schedule.clone()),
            timeout: config.webhook_timeout,
            allow_private: config.webhook_allow_private,
            consumer: crate::domain::random_id("dispatcher-", 12),
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
            per_subscription: Mutex::default(),
            tracker: TaskTracker::new(),
        })
    }

    /// A lease outlives the longest attempt, so that only a dead instance loses one.
    fn lease(&self) -> Duration {
        self.timeout + Duration::from_secs(10)
    }

    /// Runs until `shutdown`, then lets attempts in flight finish for up to `drain`. What
    /// does not finish stays leased in the store and is sent again after the lease.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken, drain: Duration) {
        let gauges = tokio::spawn(report_queue(self.store.clone(), shutdown.clone()));
        while !shutdown.is_cancelled() {
            let room = self.in_flight.available_permits().min(CLAIM_BATCH);
            if room == 0 {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    permit = self.in_flight.acquire() => drop(permit),
                }
                continue;
            }
            let claim = self
                .store
                .claim_deliveries(&self.consumer, room, CLAIM_WAIT, self.lease());
            let tasks = tokio::select! {
                () = shutdown.cancelled() => break,
                tasks = claim => tasks,
            };
            match tasks {
                Ok(tasks) => {
                    for task in tasks {
                        self.start(task).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim deliveries; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
        self.tracker.close();
        if tokio::time::timeout(drain, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                in_flight = self.tracker.len(),
                "deliveries still in flight at shutdown; they will be sent again after their lease"
            );
        }
        gauges.abort();
    }

    fn slots_of(&self, subscription: &str) -> Arc<Semaphore> {
        let mut map = self
            .per_subscription
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.entry(subscription.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(PER_SUBSCRIPTION)))
            .clone()
    }

    async fn start(self: &Arc<Self>, task: DeliveryTask) {
        let Ok(permit) = self.in_flight.clone().acquire_owned().await else {
            return;
        };
        let this = self.clone();
        match self.slots_of(&task.subscription.id).try_acquire_owned() {
            Ok(slot) => {
                self.tracker.spawn(async move {
                    this.attempt(task).await;
                    drop((slot, permit));
                });
            }
            Err(_) => {
                let later = chrono::Utc::now() + DEFER;
                self.tracker.spawn(async move {
                    this.finish(&task, DeliveryOutcome::Deferred(later)).await;
                    drop(permit);
                });
            }
        }
    }

    async fn attempt(&self, task: DeliveryTask) {
        let (attempt, verdict) =
            attempt::deliver(&self.client, &task, self.timeout, self.allow_private).await;
        let made = task.attempts_made + 1;
        metrics::histogram!("akti_webhook_attempt_duration_seconds")
            .record(attempt.duration_ms as f64 / 1000.0);
        let outcome = match verdict {
            Verdict::Delivered => DeliveryOutcome::Delivered(attempt),
            Verdict::Gone => {
                tracing::warn!(subscription = %task.subscription.id, "subscriber answered 410: disabling the subscription");
                DeliveryOutcome::Gone(attempt)
            }
            Verdict::Failed { retry_after } => match self.schedule.next_delay(made, retry_after) {
                Some(delay) => DeliveryOutcome::Retry(attempt, chrono::Utc::now() + delay),
                None => DeliveryOutcome::Failed(attempt),
            },
        };
        let name = match &outcome {
            DeliveryOutcome::Delivered(_) => "delivered",
            DeliveryOutcome::Retry(..) => "retry",
            DeliveryOutcome::Failed(_) => "failed",
            DeliveryOutcome::Gone(_) => "gone",
            DeliveryOutcome::Deferred(_) | DeliveryOutcome::Dropped => "skipped",
        };
        metrics::counter!("akti_webhook_deliveries_total", "outcome" => name).increment(1);
        self.finish(&task, outcome).await;
    }

    /// Writes an outcome, retrying while the store is unreachable: the delivery stays
    /// leased meanwhile, so giving up would only send it again later.
    async fn finish(&self, task: &DeliveryTask, outcome: DeliveryOutcome) {
        let mut wait = Duration::from_millis(100);
        for _ in 0..20 {
            match self.store.finish_delivery(task, &outcome).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, event = %task.event_id, "cannot record a delivery outcome; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}

/// Publishes the queue's depth and the age of its oldest pending delivery.
async fn report_queue(store: Arc<dyn Store>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Ok((depth, oldest)) = store.queue_depth().await {
            metrics::gauge!("akti_webhook_queue_depth").set(depth as f64);
            metrics::gauge!("akti_webhook_oldest_pending_seconds")
                .set(oldest.map_or(0.0, |d| d.as_secs_f64()));
        }
    }
}
