//! Leasing deliveries: due retries move to their partition's `ready` stream, leases of
//! dead or stuck consumers are taken over (`take_over.rs`), new entries are read as the
//! consumer group from every partition, and each is checked before it is handed out (see
//! [`rules::attemptable`]).

use super::finish::{Settle, settle};
use super::{RedisStore, from_those_that_answered};
use crate::domain::{
    Attempt, DeliveryOutcome, DeliveryStatus, DeliveryTask, EventId, EventType, Subscription,
    now_millis, rules,
};
use crate::store::redis::keys::{self, PARTITIONS, Partition};
use crate::store::redis::{scripts::SCRIPTS, unavailable};
use crate::store::{Lease, Leased, StoreError};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Most scheduled retries moved to `ready` per partition and claim.
const MOVE_BATCH: usize = 500;
/// How often scheduled retries are moved to `ready`, at most, per instance.
const MOVE_DUE_EVERY_MS: i64 = 100;
/// How often leases of dead or stuck consumers are looked for, at most, per instance.
const TAKE_OVER_EVERY_MS: i64 = 1000;
/// How long a claim that found nothing waits before it looks again, unless this
/// instance queues something meanwhile: the delay of a delivery queued by another
/// instance to an idle one.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// A stream entry: which delivery it leases.
pub(super) struct Entry {
    partition: Partition,
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

/// Claims from every partition, waiting up to `wait` for something to claim: woken at
/// once when this instance queues deliveries, else it looks again every [`POLL_EVERY`]
/// (a blocking read cannot span partitions on a cluster).
pub(super) async fn claim_deliveries(
    store: &RedisStore,
    consumer: &str,
    max: usize,
    wait: Duration,
    lease: Duration,
) -> Result<Vec<Leased>, StoreError> {
    let deadline = Instant::now() + wait;
    loop {
        let queued = store.queued.notified();
        tokio::pin!(queued);
        queued.as_mut().enable();
        let found = claim_once(store, consumer, max, lease).await?;
        let left = deadline.saturating_duration_since(Instant::now());
        if !found.is_empty() || left.is_zero() {
            return Ok(found);
        }
        tokio::select! {
            () = queued => {}
            () = tokio::time::sleep(left.min(POLL_EVERY)) => {}
        }
    }
}

async fn claim_once(
    store: &RedisStore,
    consumer: &str,
    max: usize,
    lease: Duration,
) -> Result<Vec<Leased>, StoreError> {
    if store.timers.due(&store.timers.move_due, MOVE_DUE_EVERY_MS) {
        store.move_due().await?;
    }
    let mut entries = Vec::new();
    if store
        .timers
        .due(&store.timers.take_over, TAKE_OVER_EVERY_MS)
    {
        entries = store.take_over(consumer, max, lease).await?;
    }
    if entries.is_empty() {
        entries = store.read_ready(consumer, max).await?;
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
                lease: Lease::Entry {
                    stream: entry.partition.index(),
                    id: entry.id.clone(),
                },
            }),
            _ => dropped.push(entry),
        }
    }
    let settles: Vec<Settle<'_>> = (dropped.iter())
        .map(|e| Settle {
            partition: e.partition,
            entry: &e.id,
            sub: &e.sub,
            event: &e.event,
            outcome: &DeliveryOutcome::Dropped,
        })
        .collect();
    settle(store, &settles).await?;
    Ok(tasks)
}

/// How many of `max` entries to read from each partition: as even as can be, the
/// remainder going to the partitions after `start`, which moves on at every claim, so
/// that no partition waits behind another.
fn shares(max: usize, start: usize) -> [usize; PARTITIONS] {
    let mut shares = [0; PARTITIONS];
    shares.copy_from_slice(&shares_over(max, PARTITIONS, start));
    shares
}

/// `max` spread over `n` places as [`shares`] does.
fn shares_over(max: usize, n: usize, start: usize) -> Vec<usize> {
    let mut shares = vec![max / n; n];
    for i in 0..max % n {
        shares[(start + i) % n] += 1;
    }
    shares
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
pub(super) fn entry_of(partition: Partition, entry: redis::streams::StreamId) -> Entry {
    let field = |name: &str| {
        (entry.map.get(name))
            .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
            .unwrap_or_default()
    };
    Entry {
        partition,
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
        let mut reads = Vec::with_capacity(entries.len() * 2);
        for entry in entries {
            let (mut event, mut delivery) = (redis::cmd("HMGET"), redis::cmd("HMGET"));
            event
                .arg(entry.partition.event(&entry.event))
                .arg("b")
                .arg("t");
            (delivery.arg(entry.partition.delivery(&entry.sub, &entry.event)))
                .arg("status")
                .arg("attempts");
            reads.extend([event, delivery]);
        }
        let values: Vec<(Option<String>, Option<String>)> = self.spread(reads).await?;
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

    /// Moves due retries of every partition into its `ready` stream.
    async fn move_due(&self) -> Result<(), StoreError> {
        let now = now_millis().timestamp_millis();
        let calls = Partition::all().map(|p| {
            let mut cmd = SCRIPTS.move_due.call(&[&p.retry()]);
            cmd.arg(p.ready()).arg(now).arg(MOVE_BATCH);
            self.run_one::<u64>(cmd)
        });
        let moved = from_those_that_answered(futures::future::join_all(calls).await)?;
        if moved.iter().any(|&n| n > 0) {
            self.queued.notify_waiters();
        }
        Ok(())
    }

    /// Reads new entries of every partition as the group, each partition its share; room
    /// a quiet partition left goes to those that filled theirs, in a second read.
    async fn read_ready(&self, consumer: &str, max: usize) -> Result<Vec<Entry>, StoreError> {
        let start = self.timers.next_partition.fetch_add(1, Ordering::Relaxed) % PARTITIONS;
        let first: Vec<(Partition, usize)> = Partition::all()
            .zip(shares(max, start))
            .filter(|(_, share)| *share > 0)
            .collect();
        let mut found = self.read_partitions(consumer, &first).await?;
        let room = max.saturating_sub(found.len());
        let full: Vec<Partition> = (first.iter())
            .filter(|(p, share)| found.iter().filter(|e| e.partition == *p).count() == *share)
            .map(|(p, _)| *p)
            .collect();
        if room > 0 && !full.is_empty() {
            let more = shares_over(room, full.len(), start);
            let second: Vec<(Partition, usize)> = (full.into_iter().zip(more))
                .filter(|(_, share)| *share > 0)
                .collect();
            found.extend(self.read_partitions(consumer, &second).await?);
        }
        Ok(found)
    }

    async fn read_partitions(
        &self,
        consumer: &str,
        shares: &[(Partition, usize)],
    ) -> Result<Vec<Entry>, StoreError> {
        let reads = (shares.iter()).map(|&(p, share)| self.read_partition(p, consumer, share));
        let found = from_those_that_answered(futures::future::join_all(reads).await)?;
        Ok(found.into_iter().flatten().collect())
    }

    /// Reads a partition's new entries, creating its group after a fresh start (or after
    /// Redis lost its data).
    async fn read_partition(
        &self,
        partition: Partition,
        consumer: &str,
        max: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let ready = partition.ready();
        let mut read = redis::cmd("XREADGROUP");
        read.arg("GROUP").arg(keys::GROUP).arg(consumer);
        read.arg("COUNT")
            .arg(max)
            .arg("STREAMS")
            .arg(&ready)
            .arg(">");
        let reply = match read.query_async(&mut self.conn()).await {
            Err(e) if e.code() == Some("NOGROUP") => {
                let mut create = redis::cmd("XGROUP");
                create.arg("CREATE").arg(&ready).arg(keys::GROUP);
                create.arg("0").arg("MKSTREAM");
                if let Err(e) = create.query_async::<()>(&mut self.conn()).await
                    && e.code() != Some("BUSYGROUP")
                {
                    return Err(unavailable(e));
                }
                read.query_async(&mut self.conn()).await
            }
            other => other,
        };
        let reply: redis::streams::StreamReadReply = reply.map_err(unavailable)?;
        Ok((reply.keys.into_iter())
            .flat_map(|k| k.ids)
            .map(|id| entry_of(partition, id))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_and_the_remainder_moves_round() {
        assert_eq!(shares(32, 5), [2; PARTITIONS]);
        let one = shares(1, 3);
        assert_eq!(one.iter().sum::<usize>(), 1);
        assert_eq!(one[3], 1);
        let some = shares(20, 14);
        assert_eq!(some.iter().sum::<usize>(), 20);
        assert_eq!(
            (some[14], some[15], some[0], some[1], some[2]),
            (2, 2, 2, 2, 1)
        );
    }
}
