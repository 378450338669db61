//! The outbox in Redis, in every partition: events, one delivery hash per event and
//! subscription, the `ready` stream that dispatchers read as one consumer group, the
//! `retry` set of scheduled attempts, and each subscription's part of its log (see
//! [`super::keys`]).

mod claim;
mod finish;
mod log;
mod take_over;

use super::keys::{self, Partition};
use super::scripts::SCRIPTS;
use super::{RedisStore, parse};
use crate::domain::rules::{self, SlotGrant};
use crate::domain::{
    DeliveryOutcome, DeliveryRecord, DeliveryStatus, Event, EventId, Page, Position,
    SubscriptionId, now_millis,
};
use crate::store::{Leased, Outbox, QueueDepth, StoreError};
use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

/// When this instance last did a claim's periodic work (unix ms), and where its next read
/// of the partitions starts.
#[derive(Default)]
pub(super) struct ClaimTimers {
    move_due: AtomicI64,
    take_over: AtomicI64,
    next_partition: AtomicUsize,
}

impl ClaimTimers {
    /// Whether the work timed by `last` is due, at most every `every_ms`; only one caller
    /// of the instance gets `true` for each turn.
    fn due(&self, last: &AtomicI64, every_ms: i64) -> bool {
        let now = now_millis().timestamp_millis();
        let then = last.load(Ordering::Relaxed);
        now - then >= every_ms
            && last
                .compare_exchange(then, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// What the partitions that answered answered: a partition whose primary is failing over
/// must not hold up the deliveries of the others. Fails only when none answered.
pub(super) fn from_those_that_answered<T>(
    answers: Vec<Result<T, StoreError>>,
) -> Result<Vec<T>, StoreError> {
    let mut answered = Vec::with_capacity(answers.len());
    let mut failed = None;
    for answer in answers {
        match answer {
            Ok(a) => answered.push(a),
            Err(e) => failed = Some(e),
        }
    }
    match failed {
        Some(e) if answered.is_empty() => Err(e),
        Some(e) => {
            tracing::debug!(error = %e, "a partition did not answer");
            Ok(answered)
        }
        None => Ok(answered),
    }
}

/// Events per call of the enqueue script.
const EVENTS_PER_CALL: usize = 64;

#[async_trait]
impl Outbox for RedisStore {
    async fn enqueue_events(&self, events: &[Event]) -> Result<(), StoreError> {
        let by_partition = Partition::group(events, |e| Partition::of(e.id.as_str()));
        let calls = by_partition
            .into_iter()
            .map(|(partition, events)| async move {
                let mut pipe = redis::pipe();
                for chunk in events.chunks(EVENTS_PER_CALL) {
                    let mut cmd = SCRIPTS.enqueue.call(&[&partition.ready()]);
                    cmd.arg(&partition.fan_out()[..]).arg(self.retention_ms);
                    for event in chunk {
                        cmd.arg(event.id.as_str())
                            .arg(event.event_type.as_str())
                            .arg(event.campaign_id.as_str())
                            .arg(&event.body)
                            .arg(event.created_at.timestamp_millis());
                    }
                    pipe.add_command(cmd).ignore();
                }
                self.run::<()>(&pipe).await
            });
        futures::future::try_join_all(calls).await?;
        self.queued.notify_waiters();
        Ok(())
    }

    async fn claim_deliveries(
        &self,
        consumer: &str,
        max: usize,
        wait: Duration,
        lease: Duration,
    ) -> Result<Vec<Leased>, StoreError> {
        claim::claim_deliveries(self, consumer, max, wait, lease).await
    }

    async fn finish_deliveries(
        &self,
        done: &[(Leased, DeliveryOutcome)],
    ) -> Result<(), StoreError> {
        finish::finish_deliveries(self, done).await
    }

    async fn list_deliveries(
        &self,
        sub: &SubscriptionId,
        status: Option<DeliveryStatus>,
        before: Option<Position>,
        limit: usize,
    ) -> Result<Page<DeliveryRecord>, StoreError> {
        log::list_deliveries(self, sub, status, before, limit).await
    }

    /// The delivery is in the partition of its event, which the ids do not tell: each
    /// partition is asked (an admin action, and no two partitions hold the same event).
    async fn retry_delivery(
        &self,
        sub: &SubscriptionId,
        event: &EventId,
    ) -> Result<bool, StoreError> {
        let now = now_millis().timestamp_millis();
        let calls = Partition::all().map(|p| {
            let mut cmd = SCRIPTS
                .retry_now
                .call(&[&p.delivery(sub.as_str(), event.as_str())]);
            cmd.arg(p.retry())
                .arg(p.ready())
                .arg(sub.as_str())
                .arg(event.as_str())
                .arg(now);
            self.run_one::<u8>(cmd)
        });
        let found = futures::future::try_join_all(calls).await?;
        let found = found.contains(&1);
        if found {
            self.queued.notify_waiters();
        }
        Ok(found)
    }

    async fn queue_depth(&self) -> Result<QueueDepth, StoreError> {
        let mut reads = Vec::new();
        for p in Partition::all() {
            let ready = p.ready();
            let (mut xlen, mut zcard, mut oldest) = (
                redis::cmd("XLEN"),
                redis::cmd("ZCARD"),
                redis::cmd("XRANGE"),
            );
            xlen.arg(&ready);
            zcard.arg(p.retry());
            oldest.arg(&ready).arg("-").arg("+").arg("COUNT").arg(1);
            reads.extend([xlen, zcard, oldest]);
        }
        let replies: Vec<redis::Value> = self.spread(reads).await?;
        let now = now_millis().timestamp_millis();
        let mut depth = QueueDepth::default();
        for part in replies.chunks(3) {
            let ready: u64 = parse(&part[0])?;
            let scheduled: u64 = parse(&part[1])?;
            let oldest: redis::streams::StreamRangeReply = parse(&part[2])?;
            depth.pending += ready + scheduled;
            let age = oldest.ids.first().and_then(|e| {
                let ms: i64 = e.id.split('-').next()?.parse().ok()?;
                Some(Duration::from_millis((now - ms).max(0) as u64))
            });
            depth.oldest = depth.oldest.max(age);
        }
        Ok(depth)
    }

    async fn take_send_slots(
        &self,
        sub: &SubscriptionId,
        rate: u32,
        wanted: u32,
    ) -> Result<SlotGrant, StoreError> {
        let mut take = SCRIPTS.take_slots.call(&[&keys::send_slots(sub.as_str())]);
        take.arg(rate)
            .arg(wanted)
            .arg(rules::RATE_WINDOW_MS)
            .arg(crate::domain::random_id("", 12));
        let (granted, next_free_in): (u32, i64) = self.run_one(take).await?;
        Ok(SlotGrant {
            granted,
            next_free_in,
        })
    }

    async fn keep_alive(&self, consumer: &str, ttl: Duration) -> Result<(), StoreError> {
        let mut set = redis::cmd("SET");
        set.arg(keys::heartbeat(consumer))
            .arg(1)
            .arg("PX")
            .arg(ttl.as_millis() as u64);
        self.query(&set).await
    }

    fn with_own_connections(&self) -> Result<Option<Arc<dyn Outbox>>, StoreError> {
        Ok(Some(Arc::new(self.copy_on_own_connections()?)))
    }
}
