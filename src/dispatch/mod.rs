//! The webhook dispatcher: takes due deliveries from the store, sends them, and records
//! the outcome.
//!
//! Every instance runs one (unless `AKTI_DISPATCH=false`). Deliveries are leased from the
//! store (Redis: a stream per partition, read by the consumer group all instances share;
//! SQLite: a lease column), so each is sent by one instance at a time. A dispatcher says it
//! is alive every second (`Outbox::keep_alive`): the leases of one that stopped saying so
//! are taken over at once, any other lease once it has been idle longer than an attempt can
//! last. A delivery's
//! outcome is written before its lease is released: a crash in between sends it again
//! (at-least-once). Outcomes are written in batches by one finisher task, one round trip
//! per batch.
//!
//! A subscription with a `rateLimit` is sent to only with a send slot that the store hands
//! out (at most the limit in any second, over all instances: `rules::take_slots`); what
//! gets none waits, pending, without using an attempt.
//!
//! Each subscription may have at most [`PER_SUBSCRIPTION`] attempts in flight and
//! [`QUEUED_PER_SUBSCRIPTION`] more waiting for a slot; a delivery beyond that is put back
//! until about when its subscription can take it (`slots`). So a subscriber that hangs
//! holds only its own slots and never delays the others, while a fast one is kept busy
//! without the deliveries going round the queue.

pub mod attempt;
pub mod schedule;
pub mod signing;
mod slots;
pub mod ssrf;

use crate::domain::{DeliveryOutcome, DeliveryTask, SubscriptionId};
use crate::store::{Leased, Outbox};
use attempt::Verdict;
use schedule::RetrySchedule;
use slots::{DEFER, Slots};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Attempts in flight per subscription.
pub const PER_SUBSCRIPTION: usize = 64;
/// Deliveries waiting for a slot of their subscription.
pub const QUEUED_PER_SUBSCRIPTION: usize = 128;
/// Deliveries in flight or waiting, per instance.
const IN_FLIGHT: usize = 2048;
/// Most deliveries leased in one claim.
const CLAIM_BATCH: usize = 128;
/// How long a claim waits for work before looking again.
const CLAIM_WAIT: Duration = Duration::from_millis(500);
/// The least a delivery waiting for a send slot waits before it is looked at again.
const MIN_PACING_WAIT: Duration = Duration::from_millis(20);
/// Most outcomes written in one store call.
const FINISH_BATCH: usize = 512;
/// How often a dispatcher says it is alive, and how long each saying lasts: a dead
/// instance's deliveries are taken over within about `HEARTBEAT_TTL` and a second (the
/// contract allows ten), while a few missed writes do not make a live one look dead.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
const HEARTBEAT_TTL: Duration = Duration::from_secs(5);

type Finished = (Leased, DeliveryOutcome);

/// How deliveries are attempted (`AKTI_WEBHOOK_*`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub timeout: Duration,
    pub retry_schedule: Vec<Duration>,
    pub allow_private: bool,
}

pub struct Dispatcher {
    store: Arc<dyn Outbox>,
    client: reqwest::Client,
    schedule: RetrySchedule,
    timeout: Duration,
    allow_private: bool,
    /// This instance's name in the consumer group.
    consumer: String,
    capacity: Arc<Semaphore>,
    /// Told whenever an attempt finishes, for a claim loop waiting for room.
    room: tokio::sync::Notify,
    /// A std mutex: held only to look up or insert, never across an await.
    per_subscription: Mutex<HashMap<String, Arc<Slots>>>,
    tracker: TaskTracker,
    metrics: DeliveryMetrics,
}

/// Metric handles registered once, not looked up (labels hashed, a map searched) per
/// delivery.
struct DeliveryMetrics {
    attempt_seconds: metrics::Histogram,
    delivered: metrics::Counter,
    retry: metrics::Counter,
    failed: metrics::Counter,
    gone: metrics::Counter,
    skipped: metrics::Counter,
}

impl DeliveryMetrics {
    fn new() -> Self {
        let outcome = |name: &'static str| metrics::counter!("akti_webhook_deliveries_total", "outcome" => name);
        Self {
            attempt_seconds: metrics::histogram!("akti_webhook_attempt_duration_seconds"),
            delivered: outcome("delivered"),
            retry: outcome("retry"),
            failed: outcome("failed"),
            gone: outcome("gone"),
            skipped: outcome("skipped"),
        }
    }

    fn outcome(&self, outcome: &DeliveryOutcome) -> &metrics::Counter {
        match outcome {
            DeliveryOutcome::Delivered(_) => &self.delivered,
            DeliveryOutcome::Retry(..) => &self.retry,
            DeliveryOutcome::Failed(_) => &self.failed,
            DeliveryOutcome::Gone(_) => &self.gone,
            DeliveryOutcome::Deferred(_) | DeliveryOutcome::Dropped => &self.skipped,
        }
    }
}

impl Dispatcher {
    /// Fails when the webhook client cannot be built (no TLS roots, no resolver).
    pub fn new(store: Arc<dyn Outbox>, settings: &Settings) -> reqwest::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            store,
            client: attempt::client(settings.allow_private)?,
            schedule: RetrySchedule::new(settings.retry_schedule.clone()),
            timeout: settings.timeout,
            allow_private: settings.allow_private,
            consumer: crate::domain::random_id("dispatcher-", 12),
            capacity: Arc::new(Semaphore::new(IN_FLIGHT)),
            room: tokio::sync::Notify::new(),
            per_subscription: Mutex::default(),
            tracker: TaskTracker::new(),
            metrics: DeliveryMetrics::new(),
        }))
    }

    /// A lease outlives the longest wait for a slot plus the longest attempt, so that only
    /// a dead instance loses one.
    fn lease(&self) -> Duration {
        let rounds = 1 + (QUEUED_PER_SUBSCRIPTION / PER_SUBSCRIPTION) as u32;
        self.timeout * rounds + Duration::from_secs(10)
    }

    /// Runs until `shutdown`, then lets attempts in flight finish for up to `drain`. What
    /// does not finish stays leased in the store and is sent again after the lease.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken, drain: Duration) {
        let gauges = tokio::spawn(report_queue(self.store.clone(), shutdown.clone()));
        // Alive until the last attempt in flight has finished, not just until shutdown.
        let alive = CancellationToken::new();
        let heartbeat = tokio::spawn(keep_alive(
            self.store.clone(),
            self.consumer.clone(),
            alive.clone(),
        ));
        let (finished, outcomes) = mpsc::channel::<Finished>(FINISH_BATCH * 4);
        let finisher = tokio::spawn(write_outcomes(self.store.clone(), outcomes));
        while !shutdown.is_cancelled() {
            let room = self.capacity.available_permits().min(CLAIM_BATCH);
            if room == 0 {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    permit = self.capacity.acquire() => drop(permit),
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
                    let tasks = self.pace(tasks, &finished).await;
                    let mut deferred = false;
                    for task in tasks {
                        deferred |= !self.start(task, &finished).await;
                    }
                    if deferred {
                        // A subscription's queue is full: claiming more now would only
                        // put more back. Wait for an attempt to finish (or a moment).
                        tokio::select! {
                            () = shutdown.cancelled() => break,
                            () = self.room.notified() => {}
                            () = tokio::time::sleep(DEFER) => {}
                        }
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
        // The finisher ends once every attempt that finished has handed in its outcome.
        drop(finished);
        if tokio::time::timeout(drain, finisher).await.is_err() {
            tracing::warn!("delivery outcomes not written at shutdown; they will be sent again");
        }
        alive.cancel();
        let _ = heartbeat.await;
        gauges.abort();
    }

    fn slots_of(&self, subscription: &str) -> Arc<Slots> {
        let mut map = self
            .per_subscription
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.entry(subscription.to_owned())
            .or_insert_with(|| Arc::new(Slots::new()))
            .clone()
    }

    /// Lets through the deliveries of rate-limited subscriptions that get a send slot from
    /// the store (one request per subscription and batch); the others go back, still
    /// pending and without using an attempt, until the oldest slot of the window frees.
    /// Subscriptions without a limit pass untouched.
    async fn pace(&self, tasks: Vec<Leased>, finished: &mpsc::Sender<Finished>) -> Vec<Leased> {
        let mut wanted: HashMap<SubscriptionId, (u32, u32)> = HashMap::new();
        for task in &tasks {
            let sub = &task.task.subscription;
            if let Some(rate) = sub.rate_limit {
                wanted.entry(sub.id.clone()).or_insert((rate, 0)).1 += 1;
            }
        }
        if wanted.is_empty() {
            return tasks;
        }
        let mut slots: HashMap<SubscriptionId, (u32, chrono::DateTime<chrono::Utc>)> =
            HashMap::new();
        for (sub, (rate, count)) in wanted {
            let slot = match self.store.take_send_slots(&sub, rate, count).await {
                Ok(grant) => {
                    let wait = Duration::from_millis(grant.next_free_in.max(0) as u64);
                    (
                        grant.granted,
                        chrono::Utc::now() + wait.max(MIN_PACING_WAIT),
                    )
                }
                Err(e) => {
                    // Without the store's count, sending could exceed the limit.
                    tracing::warn!(error = %e, subscription = %sub, "cannot take send slots; waiting");
                    (0, chrono::Utc::now() + Duration::from_secs(1))
                }
            };
            slots.insert(sub, slot);
        }
        let mut go = Vec::with_capacity(tasks.len());
        for task in tasks {
            match slots.get_mut(&task.task.subscription.id) {
                Some((0, later)) => {
                    let _ = finished
                        .send((task, DeliveryOutcome::Deferred(*later)))
                        .await;
                }
                Some((granted, _)) => {
                    *granted -= 1;
                    go.push(task);
                }
                None => go.push(task),
            }
        }
        go
    }

    /// Starts an attempt, or puts the delivery back when its subscription's queue is full
    /// (answers `false` then).
    async fn start(self: &Arc<Self>, task: Leased, finished: &mpsc::Sender<Finished>) -> bool {
        let Ok(permit) = self.capacity.clone().acquire_owned().await else {
            return true;
        };
        let this = self.clone();
        let finished = finished.clone();
        let slots = self.slots_of(task.task.subscription.id.as_str());
        if slots.waiting.fetch_add(1, Ordering::AcqRel) >= QUEUED_PER_SUBSCRIPTION {
            slots.waiting.fetch_sub(1, Ordering::AcqRel);
            let later = chrono::Utc::now() + slots.put_back();
            let _ = finished
                .send((task, DeliveryOutcome::Deferred(later)))
                .await;
            return false;
        }
        self.tracker.spawn(async move {
            let slot = slots.in_flight.clone().acquire_owned().await;
            slots.waiting.fetch_sub(1, Ordering::AcqRel);
            if slot.is_ok() {
                let began = std::time::Instant::now();
                let outcome = this.attempt(&task.task).await;
                slots.record_attempt(began.elapsed());
                let _ = finished.send((task, outcome)).await;
            }
            drop((slot, permit));
            this.room.notify_one();
        });
        true
    }

    async fn attempt(&self, task: &DeliveryTask) -> DeliveryOutcome {
        let (attempt, verdict) =
            attempt::deliver(&self.client, task, self.timeout, self.allow_private).await;
        let made = task.attempts_made + 1;
        (self.metrics.attempt_seconds).record(attempt.duration_ms as f64 / 1000.0);
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
        self.metrics.outcome(&outcome).increment(1);
        outcome
    }
}

/// Writes outcomes in batches, retrying while the store is unreachable: the deliveries
/// stay leased meanwhile, so giving up would only send them again later.
async fn write_outcomes(store: Arc<dyn Outbox>, mut outcomes: mpsc::Receiver<Finished>) {
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
async fn report_queue(store: Arc<dyn Outbox>, shutdown: CancellationToken) {
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
async fn keep_alive(store: Arc<dyn Outbox>, consumer: String, alive: CancellationToken) {
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
