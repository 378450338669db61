//! Leasing deliveries: due retries move to the `ready` stream, stale leases are taken over,
//! new entries are read as the consumer group, and each is checked before it is handed
//! out (see [`rules::attemptable`]).

use super::finish::{Settle, settle};
use super::{RedisStore, keys};
use crate::domain::{
    Attempt, DeliveryOutcome, DeliveryStatus, DeliveryTask, EventId, EventType, Subscription,
    now_millis, rules,
};
use crate::store::redis::{scripts::SCRIPTS, unavailable};
use crate::store::{Lease, Leased, StoreError};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Most scheduled retries moved to `ready` per claim.
const MOVE_BATCH: usize = 500;

/// A stream entry: which delivery it leases.
struct Entry {
    id: String,
    sub: String,
    event: String,
}

/// What the store holds for an entry's delivery.
struct Row {
    body: Option<String>,
    event_type: Option<String>,
    status: Option<String>,
    attempts: Option<String>,
}

pub(super) async fn claim_deliveries(
    store: &RedisStore,
    consumer: &str,
    max: usize,
    wait: Duration,
    lease: Duration,
) -> Result<Vec<Leased>, StoreError> {
    let mut move_due = SCRIPTS.move_due.call(&[keys::RETRY]);
    move_due
        .arg(keys::READY)
        .arg(now_millis().timestamp_millis())
        .arg(MOVE_BATCH);
    store.run_one::<u64>(move_due).await?;
    let mut entries = store.reclaim_stale(consumer, max, lease).await?;
    if entries.is_empty() {
        entries = store.read_ready(consumer, max, wait).await?;
    }
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let (subs, rows) = store.read_rows(&entries).await?;
    let mut tasks = Vec::with_capacity(entries.len());
    let mut dropped = Vec::new();
    for (entry, row) in entries.iter().zip(rows) {
        let sub = subs.get(&entry.sub).and_then(Option::as_ref);
        let status = row.status.as_deref().and_then(DeliveryStatus::parse);
        let event_type = row.event_type.as_deref().and_then(EventType::parse);
        let attemptable =
            rules::attemptable(sub, row.body.is_some() && event_type.is_some(), status);
        match (attemptable, sub, row.body, event_type) {
            (true, Some(sub), Some(body), Some(event_type)) => tasks.push(Leased {
                task: DeliveryTask {
                    subscription: sub.clone(),
                    event_id: EventId::from_trusted(entry.event.clone()),
                    event_type,
                    body,
                    attempts_made: attempts_made(row.attempts.as_deref())?,
                },
                lease: Lease::Entry(entry.id.clone()),
            }),
            _ => dropped.push(entry),
        }
    }
    let settles: Vec<Settle<'_>> = (dropped.iter())
        .map(|e| Settle {
            entry: &e.id,
            sub: &e.sub,
            event: &e.event,
            outcome: &DeliveryOutcome::Dropped,
        })
        .collect();
    settle(store, &settles).await?;
    Ok(tasks)
}

fn attempts_made(attempts: Option<&str>) -> Result<u32, StoreError> {
    let Some(attempts) = attempts else {
        return Ok(0);
    };
    serde_json::from_str::<Vec<Attempt>>(attempts)
        .map(|a| a.len() as u32)
        .map_err(|e| StoreError::Corrupt(format!("a delivery's attempts: {e}")))
}

/// A stream entry from its fields; one without them leases nothing we can name.
fn entry_of(entry: redis::streams::StreamId) -> Entry {
    let field = |name: &str| {
        (entry.map.get(name))
            .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
            .unwrap_or_default()
    };
    Entry {
        sub: field("s"),
        event: field("e"),
        id: entry.id.clone(),
    }
}

impl RedisStore {
    /// The subscriptions of `entries` (each once) and each entry's delivery.
    async fn read_rows(
        &self,
        entries: &[Entry],
    ) -> Result<(HashMap<String, Option<Subscription>>, Vec<Row>), StoreError> {
        let mut ids: Vec<&str> = entries.iter().map(|e| e.sub.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let found = self.fetch_subscriptions(&ids).await?;
        let subs = ids.iter().map(|id| (*id).to_owned()).zip(found).collect();
        let mut pipe = redis::pipe();
        for entry in entries {
            pipe.cmd("HMGET")
                .arg(keys::event(&entry.event))
                .arg("b")
                .arg("t");
            pipe.cmd("HMGET")
                .arg(keys::delivery(&entry.sub, &entry.event))
                .arg("status")
                .arg("attempts");
        }
        let values: Vec<(Option<String>, Option<String>)> = self.query_pipe(&pipe).await?;
        let rows = values
            .chunks(2)
            .map(|pair| Row {
                body: pair[0].0.clone(),
                event_type: pair[0].1.clone(),
                status: pair.get(1).and_then(|p| p.0.clone()),
                attempts: pair.get(1).and_then(|p| p.1.clone()),
            })
            .collect();
        Ok((subs, rows))
    }

    /// Reads the group's new entries, creating the group after a fresh start (or after
    /// Redis lost its data).
    async fn read_ready(
        &self,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Entry>, StoreError> {
        let mut read = redis::cmd("XREADGROUP");
        read.arg("GROUP")
            .arg(keys::GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(max);
        if !wait.is_zero() {
            read.arg("BLOCK").arg(wait.as_millis() as u64);
        }
        read.arg("STREAMS").arg(keys::READY).arg(">");
        let reply = match read.query_async(&mut self.blocking.clone()).await {
            Err(e) if e.code() == Some("NOGROUP") => {
                let mut create = redis::cmd("XGROUP");
                create
                    .arg("CREATE")
                    .arg(keys::READY)
                    .arg(keys::GROUP)
                    .arg("0")
                    .arg("MKSTREAM");
                if let Err(e) = create.query_async::<()>(&mut self.conn()).await
                    && e.code() != Some("BUSYGROUP")
                {
                    return Err(unavailable(e));
                }
                read.query_async(&mut self.blocking.clone()).await
            }
            other => other,
        };
        let reply: redis::streams::StreamReadReply = reply.map_err(unavailable)?;
        Ok(reply
            .keys
            .into_iter()
            .flat_map(|k| k.ids)
            .map(entry_of)
            .collect())
    }

    /// Takes over entries leased by a consumer that stopped answering, at most once a
    /// second per instance.
    async fn reclaim_stale(
        &self,
        consumer: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<Entry>, StoreError> {
        let now = now_millis().timestamp_millis();
        let last = self.last_reclaim.load(Ordering::Relaxed);
        let due = now - last >= 1000
            && (self.last_reclaim)
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if !due {
            return Ok(Vec::new());
        }
        let mut claim = redis::cmd("XAUTOCLAIM");
        claim
            .arg(keys::READY)
            .arg(keys::GROUP)
            .arg(consumer)
            .arg(lease.as_millis() as u64);
        claim.arg("0-0").arg("COUNT").arg(max);
        match claim
            .query_async::<redis::streams::StreamAutoClaimReply>(&mut self.conn())
            .await
        {
            Ok(reply) => Ok(reply.claimed.into_iter().map(entry_of).collect()),
            // No group yet: nothing can be stale.
            Err(e) if e.code() == Some("NOGROUP") => Ok(Vec::new()),
            Err(e) => Err(unavailable(e)),
        }
    }
}
