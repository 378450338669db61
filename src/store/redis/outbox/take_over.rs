//! Taking over leases: those of a consumer whose heartbeat expired (its instance died) at
//! once, and any other once it has been idle for longer than a lease (its instance lives
//! but lost track of it). A live instance's attempt in progress is never handed out again
//! before its lease ends.

use super::claim::{Entry, entry_of};
use crate::store::StoreError;
use crate::store::redis::keys::{self, Partition};
use crate::store::redis::{RedisStore, unavailable};
use redis::streams::StreamPendingReply;
use std::collections::HashMap;
use std::time::Duration;

impl RedisStore {
    pub(super) async fn take_over(
        &self,
        consumer: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<Entry>, StoreError> {
        let mut taken = self.take_from_the_dead(consumer, max).await?;
        for p in Partition::all() {
            if taken.len() >= max {
                break;
            }
            taken.extend(
                self.take_idle(p, consumer, max - taken.len(), lease)
                    .await?,
            );
        }
        Ok(taken)
    }

    /// Entries idle for longer than `lease` in one partition.
    async fn take_idle(
        &self,
        partition: Partition,
        consumer: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<Entry>, StoreError> {
        let mut claim = redis::cmd("XAUTOCLAIM");
        claim.arg(partition.ready()).arg(keys::GROUP).arg(consumer);
        claim
            .arg(lease.as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(max);
        match claim
            .query_async::<redis::streams::StreamAutoClaimReply>(&mut self.conn())
            .await
        {
            Ok(reply) => Ok((reply.claimed.into_iter())
                .map(|id| entry_of(partition, id))
                .collect()),
            // No group yet: nothing can be stale.
            Err(e) if e.code() == Some("NOGROUP") => Ok(Vec::new()),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Every entry leased to a consumer other than `consumer` whose heartbeat is gone.
    async fn take_from_the_dead(
        &self,
        consumer: &str,
        max: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let summaries = Partition::all().map(|p| async move {
            let mut pending = redis::cmd("XPENDING");
            pending.arg(p.ready()).arg(keys::GROUP);
            match pending.query_async(&mut self.conn()).await {
                // No group yet: nothing is leased.
                Err(e) if e.code() == Some("NOGROUP") => Ok(StreamPendingReply::Empty),
                other => other.map_err(unavailable),
            }
        });
        let summaries: Vec<(Partition, StreamPendingReply)> = Partition::all()
            .zip(futures::future::join_all(summaries).await)
            .filter_map(|(p, summary)| Some(p).zip(summary.ok()))
            .collect();
        let mut holders: HashMap<String, Vec<Partition>> = HashMap::new();
        for (p, summary) in summaries {
            if let StreamPendingReply::Data(data) = summary {
                for c in data.consumers {
                    if c.name != consumer && c.pending > 0 {
                        holders.entry(c.name).or_default().push(p);
                    }
                }
            }
        }
        if holders.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<String> = holders.keys().cloned().collect();
        let alive: Vec<bool> = self
            .spread(
                (names.iter())
                    .map(|name| {
                        let mut exists = redis::cmd("EXISTS");
                        exists.arg(keys::heartbeat(name));
                        exists
                    })
                    .collect(),
            )
            .await?;
        let mut taken = Vec::new();
        for (name, alive) in names.iter().zip(alive) {
            if alive {
                continue;
            }
            for &p in &holders[name] {
                if taken.len() >= max {
                    return Ok(taken);
                }
                match self.take_from(p, name, consumer, max - taken.len()).await {
                    Ok(entries) => taken.extend(entries),
                    Err(e) => tracing::debug!(error = %e, partition = p.index(), "no takeover"),
                }
            }
        }
        if !taken.is_empty() {
            tracing::info!(
                deliveries = taken.len(),
                "took over deliveries of a stopped instance"
            );
        }
        Ok(taken)
    }

    /// Up to `max` entries of `dead` in one partition, leased to `consumer` from now.
    async fn take_from(
        &self,
        partition: Partition,
        dead: &str,
        consumer: &str,
        max: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let ready = partition.ready();
        let mut pending = redis::cmd("XPENDING");
        pending
            .arg(&ready)
            .arg(keys::GROUP)
            .arg("-")
            .arg("+")
            .arg(max)
            .arg(dead);
        let pending: redis::streams::StreamPendingCountReply = self.query(&pending).await?;
        if pending.ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut claim = redis::cmd("XCLAIM");
        claim.arg(&ready).arg(keys::GROUP).arg(consumer).arg(0);
        for id in &pending.ids {
            claim.arg(&id.id);
        }
        let claimed: redis::streams::StreamClaimReply = self.query(&claim).await?;
        if pending.ids.len() < max {
            // Nothing of it is left here: forget the dead consumer, so that the group does
            // not collect the names of every instance that ever ran.
            let mut forget = redis::cmd("XGROUP");
            forget
                .arg("DELCONSUMER")
                .arg(&ready)
                .arg(keys::GROUP)
                .arg(dead);
            self.query::<u64>(&forget).await?;
        }
        Ok((claimed.ids.into_iter())
            .map(|id| entry_of(partition, id))
            .collect())
    }
}
