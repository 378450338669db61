//! The outbox in Redis: events, one delivery hash per event and subscription, the `ready`
//! stream that dispatchers read as one consumer group, the `retry` set of scheduled
//! attempts, and each subscription's log (see [`super::keys`]).

mod claim;
mod finish;
mod log;

use super::scripts::SCRIPTS;
use super::{RedisStore, keys};
use crate::domain::{
    DeliveryOutcome, DeliveryRecord, DeliveryStatus, Event, EventId, Page, Position,
    SubscriptionId, now_millis,
};
use crate::store::{Leased, Outbox, QueueDepth, StoreError};
use async_trait::async_trait;
use std::time::Duration;

/// Events per call of the enqueue script.
const EVENTS_PER_CALL: usize = 64;

#[async_trait]
impl Outbox for RedisStore {
    async fn enqueue_events(&self, events: &[Event]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for chunk in events.chunks(EVENTS_PER_CALL) {
            let mut cmd = SCRIPTS.enqueue.call(&[keys::READY]);
            cmd.arg(&keys::FAN_OUT[..]).arg(self.retention_ms);
            for event in chunk {
                cmd.arg(event.id.as_str())
                    .arg(event.event_type.as_str())
                    .arg(event.campaign_id.as_str())
                    .arg(&event.body)
                    .arg(event.created_at.timestamp_millis());
            }
            pipe.add_command(cmd).ignore();
        }
        self.run(&pipe).await
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

    async fn retry_delivery(
        &self,
        sub: &SubscriptionId,
        event: &EventId,
    ) -> Result<bool, StoreError> {
        let mut cmd = SCRIPTS
            .retry_now
            .call(&[&keys::delivery(sub.as_str(), event.as_str())]);
        cmd.arg(keys::RETRY)
            .arg(keys::READY)
            .arg(sub.as_str())
            .arg(event.as_str())
            .arg(now_millis().timestamp_millis());
        self.run_one::<u8>(cmd).await.map(|n| n == 1)
    }

    async fn queue_depth(&self) -> Result<QueueDepth, StoreError> {
        let mut pipe = redis::pipe();
        pipe.xlen(keys::READY)
            .zcard(keys::RETRY)
            .cmd("XRANGE")
            .arg(keys::READY)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1);
        let (ready, scheduled, oldest): (u64, u64, redis::streams::StreamRangeReply) =
            self.query_pipe(&pipe).await?;
        let now = now_millis().timestamp_millis();
        let oldest = oldest.ids.first().and_then(|e| {
            let ms: i64 = e.id.split('-').next()?.parse().ok()?;
            Some(Duration::from_millis((now - ms).max(0) as u64))
        });
        Ok(QueueDepth {
            pending: ready + scheduled,
            oldest,
        })
    }
}
