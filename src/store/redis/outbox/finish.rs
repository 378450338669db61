//! Writing outcomes: `lua/finish.lua` settles each delivery as [`rules::settle`] says.

use super::{RedisStore, keys};
use crate::domain::{DeliveryOutcome, rules};
use crate::store::redis::scripts::SCRIPTS;
use crate::store::{Lease, Leased, StoreError};

/// Outcomes per call of the finish script: one `XDEL` for all of them, and no call holds
/// Redis for more than about a millisecond.
pub(super) const OUTCOMES_PER_CALL: usize = 64;

/// One delivery to settle: its stream entry, its ids, and what becomes of it.
pub(super) struct Settle<'a> {
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
            Lease::Entry(entry) => Ok(Settle {
                entry,
                sub: leased.task.subscription.id.as_str(),
                event: leased.task.event_id.as_str(),
                outcome,
            }),
            Lease::Row => Err(StoreError::bug(std::io::Error::other(
                "a lease without a stream entry in the Redis store",
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    settle(store, &settles).await
}

/// Settles deliveries, a script call per [`OUTCOMES_PER_CALL`].
pub(super) async fn settle(store: &RedisStore, settles: &[Settle<'_>]) -> Result<(), StoreError> {
    if settles.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for chunk in settles.chunks(OUTCOMES_PER_CALL) {
        let mut cmd = SCRIPTS.finish.call(&[keys::READY]);
        cmd.arg(&keys::FINISH[..]);
        for one in chunk {
            add_settle(&mut cmd, one)?;
        }
        pipe.add_command(cmd).ignore();
    }
    store.run(&pipe).await
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
