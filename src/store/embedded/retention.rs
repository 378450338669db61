//! The sweep that keeps the embedded store's file from growing without bound: closed dedup
//! windows, remembered counts batches, expired messages and series buckets, and events and deliveries older
//! than `AKTI_EVENT_RETENTION`.

use super::sqlite;
use super::writer::{Job, write_with};
use crate::domain::now_millis;
use crate::store::StoreError;
use rusqlite::Connection;
use std::time::Duration;
use tokio::sync::mpsc::WeakSender;

/// How long a counts batch's name is remembered: a batch is retried within seconds.
const BATCHES_KEPT_MS: i64 = 3_600_000;

/// Sweeps every quarter of the retention, at least every minute and at most four times a
/// second, for as long as the store is open (its writer's queue has a sender).
pub(super) fn sweep_every_while_open(jobs: WeakSender<Job>, retention: Duration) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let every = (retention / 4).clamp(Duration::from_millis(250), Duration::from_secs(60));
    runtime.spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(jobs) = jobs.upgrade() else { return };
            if let Err(e) = write_with(&jobs, move |conn| sweep(conn, retention)).await {
                tracing::warn!(error = %e, "embedded store sweep failed");
            }
        }
    });
}

fn sweep(conn: &Connection, retention: Duration) -> Result<(), StoreError> {
    let now = now_millis().timestamp_millis();
    let old = now - retention.as_millis() as i64;
    let statements: [(&str, i64); 7] = [
        ("DELETE FROM campaign_series WHERE expires_at < ?1", now),
        ("DELETE FROM windows WHERE expires_at < ?1", now),
        (
            "DELETE FROM applied_batches WHERE applied_at < ?1",
            now - BATCHES_KEPT_MS,
        ),
        ("DELETE FROM deliveries WHERE created_at < ?1", old),
        ("DELETE FROM events WHERE created_at < ?1", old),
        (
            "DELETE FROM message_statuses WHERE message_id IN \
             (SELECT id FROM messages WHERE expires_at < ?1)",
            now,
        ),
        ("DELETE FROM messages WHERE expires_at < ?1", now),
    ];
    for (sql, before) in statements {
        conn.execute(sql, [before]).map_err(sqlite)?;
    }
    Ok(())
}
