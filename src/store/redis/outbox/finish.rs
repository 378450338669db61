//! Writing outcomes: `lua/finish.lua` settles each delivery as [`rules::settle`] says.

use super::RedisStore;
use crate::domain::{DeliveryOutcome, rules};
use crate::store::redis::keys::Partition;
use crate::store::redis::scripts::SCRIPTS;
use crate::store::{Lease, Leased, StoreError};

/// Outcomes per call of the finish script: one `XDEL` for all of them, and no call holds
/// Redis for more than about a millisecond.
pub(super) const OUTCOMES_PER_CALL: usize = 64;

/// One delivery to settle: its stream entry, its ids, and what becomes of it.
pub(super) struct Settle<'a> {
    pub partition: Partition,
    pub entry: &'a str,
    pub sub: &'a str,
    pub event: &'a str,
    pub outcome: &'a DeliveryOutcome,
}

pub(super) async fn finish_deliveries(
    store: &RedisStore,
    done: &[(Leased, DeliveryOutcome)],
) -> Result<(), StoreError> {
    let settles = done
        .iter()
        .map(|(leased, outcome)| match &leased.lease {
            Lease::Entry { stream, id } => Ok(Settle {
                partition: Partition::from_index(*stream).ok_or_else(|| {
                    StoreError::bug(std::io::Error::other("a lease of no partition"))
                })?,
                entry: id,
                sub: leased.task.subscription.id.as_str(),
                event: leased.task.event_id.as_str(),
                outcome,
            }),
            Lease::Row => Err(StoreError::bug(std::io::Error::other(
                "a lease without a stream entry in the Redis store",
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    settle(store, &settles).await?;
    // The script disabled the subscription where it settled the 410 (so that its
    // partition queues nothing more for it); here, everywhere else.
    let mut gone: Vec<&str> = (settles.iter())
        .filter(|one| rules::settle(one.outcome).disables_subscription)
        .map(|one| one.sub)
        .collect();
    gone.sort_unstable();
    gone.dedup();
    for sub in gone {
        store.disable_subscription(sub).await?;
    }
    Ok(())
}

/// Settles deliveries, a script call per [`OUTCOMES_PER_CALL`] in each partition.
pub(super) async fn settle(store: &RedisStore, settles: &[Settle<'_>]) -> Result<(), StoreError> {
    let by_partition = Partition::group(settles, |one| one.partition);
    let calls = by_partition
        .into_iter()
        .map(|(partition, settles)| async move {
            let mut pipe = redis::pipe();
            for chunk in settles.chunks(OUTCOMES_PER_CALL) {
                let mut cmd = SCRIPTS.finish.call(&[&partition.ready()]);
                cmd.arg(&partition.finish()[..]);
                for one in chunk {
                    add_settle(&mut cmd, one)?;
                }
                pipe.add_command(cmd).ignore();
            }
            store.run::<()>(&pipe).await
        });
    futures::future::try_join_all(calls).await.map(drop)
}

fn add_settle(cmd: &mut redis::Cmd, one: &Settle<'_>) -> Result<(), StoreError> {
    let settled = rules::settle(one.outcome);
    let attempt = (settled.attempt.map(serde_json::to_string))
        .transpose()
        .map_err(StoreError::bug)?
        .unwrap_or_default();
    let next =
        (settled.next_attempt_at).map_or(String::new(), |t| t.timestamp_millis().to_string());
    let flag = |on: bool| if on { "1" } else { "0" };
    cmd.arg(one.entry)
        .arg(settled.status.map_or("", |s| s.as_str()))
        .arg(attempt)
        .arg(next)
        .arg(flag(settled.only_if_pending))
        .arg(flag(settled.disables_subscription))
        .arg(one.sub)
        .arg(one.event);
    Ok(())
}
