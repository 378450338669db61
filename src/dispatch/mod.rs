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
//!
//! The app runs the dispatcher on a runtime of its own whose threads have a lower
//! priority ([`crate::background`]), on store connections of its own made there: when the
//! cores are full, redirects go first and deliveries wait in the store.

pub mod attempt;
pub mod schedule;
pub mod signing;
mod slots;
pub mod ssrf;
mod upkeep;

use crate::domain::{DeliveryOutcome, DeliveryTask, SubscriptionId};
use crate::store::{Leased, Outbox};
use attempt::Verdict;
use schedule::RetrySchedule;
use slots::{DEFER, Slots};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
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
/// How long after its send slot was asked for a paced delivery's attempt may begin; a
/// later one goes back (its slot unused) rather than arrive in the next second's share.
/// Half the margin of the store's window over a second, the other half for the request
/// to reach the subscriber: this matters when the dispatcher's threads, which have a
/// lower priority, wait for a busy core.
const SLOT_GRACE: Duration =
    Duration::from_millis((crate::domain::rules::RATE_WINDOW_MS as u64 - 1000) / 2);
/// Most outcomes written in one store call.
const FINISH_BATCH: usize = 512;

type Finished = (Leased, DeliveryOutcome);

/// How deliveries are attempted (`AKTI_WEBHOOK_*`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub timeout: Duration,
    pub retry_schedule: Vec<Duration>,
    pub allow_private: bool,
}

pub struct Dispatcher {
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
    /// The service's own runtime, for paced attempts ([`Dispatcher::start`]).
    paced_on: tokio::runtime::Handle,
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
    /// Fails when the webhook client cannot be built (no TLS roots, no resolver). Called
    /// on the service's runtime, which it keeps for paced attempts.
    pub fn new(settings: &Settings) -> reqwest::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            client: attempt::client(settings.allow_private)?,
            schedule: RetrySchedule::new(settings.retry_schedule.clone()),
            timeout: settings.timeout,
            allow_private: settings.allow_private,
            consumer: crate::domain::random_id("dispatcher-", 12),
            capacity: Arc::new(Semaphore::new(IN_FLIGHT)),
            room: tokio::sync::Notify::new(),
            per_subscription: Mutex::default(),
            tracker: TaskTracker::new(),
            paced_on: tokio::runtime::Handle::current(),
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
    ///
    /// Meant for a runtime of its own ([`crate::background`]): it sends on connections of
    /// the store's own, made on the runtime that runs it.
    pub async fn run(
        self: Arc<Self>,
        store: Arc<dyn Outbox>,
        shutdown: CancellationToken,
        drain: Duration,
    ) {
        let store = match store.with_own_connections() {
            Ok(Some(own)) => own,
            Ok(None) => store,
            Err(e) => {
                tracing::warn!(error = %e, "no connections of the dispatcher's own; sharing the service's");
                store
            }
        };
        let gauges = tokio::spawn(upkeep::report_queue(store.clone(), shutdown.clone()));
        // Alive until the last attempt in flight has finished, not just until shutdown.
        let alive = CancellationToken::new();
        let heartbeat = tokio::spawn(upkeep::keep_alive(
            store.clone(),
            self.consumer.clone(),
            alive.clone(),
        ));
        let (finished, outcomes) = mpsc::channel::<Finished>(FINISH_BATCH * 4);
        let finisher = tokio::spawn(upkeep::write_outcomes(store.clone(), outcomes));
        while !shutdown.is_cancelled() {
            let room = self.capacity.available_permits().min(CLAIM_BATCH);
            if room == 0 {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    permit = self.capacity.acquire() => drop(permit),
                }
                continue;
            }
            let claim = store.claim_deliveries(&self.consumer, room, CLAIM_WAIT, self.lease());
            let tasks = tokio::select! {
                () = shutdown.cancelled() => break,
                tasks = claim => tasks,
            };
            match tasks {
                Ok(tasks) => {
                    let tasks = self.pace(store.as_ref(), tasks, &finished).await;
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
    /// Subscriptions without a limit pass untouched; those let through carry when their
    /// slot was asked for.
    async fn pace(
        &self,
        store: &dyn Outbox,
        tasks: Vec<Leased>,
        finished: &mpsc::Sender<Finished>,
    ) -> Vec<(Leased, Option<Instant>)> {
        let mut wanted: HashMap<SubscriptionId, (u32, u32)> = HashMap::new();
        for task in &tasks {
            let sub = &task.task.subscription;
            if let Some(rate) = sub.rate_limit {
                wanted.entry(sub.id.clone()).or_insert((rate, 0)).1 += 1;
            }
        }
        if wanted.is_empty() {
            return tasks.into_iter().map(|t| (t, None)).collect();
        }
        let mut slots: HashMap<SubscriptionId, (u32, chrono::DateTime<chrono::Utc>)> =
            HashMap::new();
        let asked = Instant::now();
        for (sub, (rate, count)) in wanted {
            let slot = match store.take_send_slots(&sub, rate, count).await {
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
                    go.push((task, Some(asked)));
                }
                None => go.push((task, None)),
            }
        }
        go
    }

    /// Starts an attempt, or puts the delivery back when its subscription's queue is full
    /// (answers `false` then). A paced delivery whose slot was asked for more than
    /// [`SLOT_GRACE`] before its attempt could begin goes back too.
    ///
    /// Paced attempts run on the service's runtime, at its priority, not the dispatcher's
    /// lower one: a subscriber's limit is counted when the slot is taken, so a request
    /// that waits for a busy core before it leaves could arrive in the next second's
    /// share. They are few by definition (at most the limits).
    async fn start(
        self: &Arc<Self>,
        (task, slot_asked): (Leased, Option<Instant>),
        finished: &mpsc::Sender<Finished>,
    ) -> bool {
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
        let attempt = async move {
            let slot = slots.in_flight.clone().acquire_owned().await;
            slots.waiting.fetch_sub(1, Ordering::AcqRel);
            if slot.is_ok() {
                let began = Instant::now();
                let outcome = if slot_asked.is_some_and(|at| began - at > SLOT_GRACE) {
                    DeliveryOutcome::Deferred(chrono::Utc::now() + MIN_PACING_WAIT)
                } else {
                    let outcome = this.attempt(&task.task).await;
                    slots.record_attempt(began.elapsed());
                    outcome
                };
                let _ = finished.send((task, outcome)).await;
            }
            drop((slot, permit));
            this.room.notify_one();
        };
        if slot_asked.is_some() {
            self.tracker.spawn_on(attempt, &self.paced_on);
        } else {
            self.tracker.spawn(attempt);
        }
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
