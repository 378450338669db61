//! The outbox in SQLite: events, and one delivery row per event and subscription, due when
//! pending, its time has come and no live lease holds it.

use super::subscriptions::find_subscription;
use super::{EmbeddedStore, corrupt, sqlite};
use crate::domain::rules::SlotGrant;
use crate::domain::{
    Attempt, DeliveryOutcome, DeliveryRecord, DeliveryStatus, DeliveryTask, Event, EventId,
    EventType, Page, Position, Subscription, SubscriptionId, from_millis, now_millis, rules,
};
use crate::store::{Lease, Leased, Outbox, QueueDepth, StoreError};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use std::time::Duration;

/// Stores `event` and one pending delivery for each subscription in `subs` that wants it.
pub(super) fn enqueue(
    conn: &Connection,
    event: &Event,
    subs: &[Subscription],
) -> Result<(), StoreError> {
    let created = event.created_at.timestamp_millis();
    conn.prepare_cached(
        "INSERT OR IGNORE INTO events (id, event_type, campaign_id, body, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            event.id.as_str(),
            event.event_type.as_str(),
            event.campaign_id.as_str(),
            event.body,
            created
        ])
    })
    .map_err(sqlite)?;
    let mut insert = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO deliveries (sub_id, event_id, event_type, status, \
             next_attempt_at, created_at) VALUES (?1, ?2, ?3, 'pending', ?4, ?4)",
        )
        .map_err(sqlite)?;
    for sub in subs
        .iter()
        .filter(|s| s.wants(event.event_type, &event.campaign_id))
    {
        (insert.execute(params![
            sub.id.as_str(),
            event.id.as_str(),
            event.event_type.as_str(),
            created
        ]))
        .map_err(sqlite)?;
    }
    Ok(())
}

/// Leases up to `max` due deliveries until `lease_until`; answers them, and when the next
/// one is due.
fn claim(
    conn: &Connection,
    now: i64,
    lease_until: i64,
    max: usize,
) -> Result<(Vec<Leased>, Option<i64>), StoreError> {
    let mut claim = conn
        .prepare_cached(
            "UPDATE deliveries SET lease_until = ?2 WHERE rowid IN ( \
               SELECT rowid FROM deliveries WHERE status = 'pending' \
               AND next_attempt_at <= ?1 AND lease_until <= ?1 \
               ORDER BY next_attempt_at LIMIT ?3) \
             RETURNING sub_id, event_id, attempts",
        )
        .map_err(sqlite)?;
    let claimed: Vec<(String, String, String)> = claim
        .query_map(params![now, lease_until, max as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .and_then(|rows| rows.collect())
        .map_err(sqlite)?;
    let mut tasks = Vec::with_capacity(claimed.len());
    for (sub_id, event_id, attempts) in claimed {
        let sub = find_subscription(conn, &sub_id)?;
        let event: Option<(String, String)> = conn
            .prepare_cached("SELECT event_type, body FROM events WHERE id = ?1")
            .and_then(|mut s| {
                s.query_row([&event_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(sqlite)?;
        let event = event.map(|(t, body)| (EventType::parse(&t), body));
        let kept = matches!(event, Some((Some(_), _)));
        match (
            rules::attemptable(sub.as_ref(), kept, Some(DeliveryStatus::Pending)),
            sub,
            event,
        ) {
            (true, Some(subscription), Some((Some(event_type), body))) => tasks.push(Leased {
                task: DeliveryTask {
                    subscription,
                    event_id: EventId::from_trusted(event_id),
                    event_type,
                    body,
                    attempts_made: attempts_count(&attempts)?,
                },
                lease: Lease::Row,
            }),
            _ => {
                // Disabled or deleted subscription, or expired event: nothing to send.
                conn.execute(
                    "UPDATE deliveries SET status = 'failed', lease_until = 0 \
                     WHERE sub_id = ?1 AND event_id = ?2",
                    params![sub_id, event_id],
                )
                .map_err(sqlite)?;
            }
        }
    }
    let next_due: Option<i64> = (conn.query_row(
        "SELECT min(max(next_attempt_at, lease_until)) FROM deliveries WHERE status = 'pending'",
        [],
        |r| r.get(0),
    ))
    .map_err(sqlite)?;
    Ok((tasks, next_due))
}

fn attempts_count(attempts: &str) -> Result<u32, StoreError> {
    (serde_json::from_str::<Vec<Attempt>>(attempts))
        .map(|a| a.len() as u32)
        .map_err(|e| corrupt(format!("a delivery's attempts: {e}")))
}

/// Settles one delivery as [`rules::settle`] says and releases its lease; one whose lease
/// was already released (written before) changes nothing, as in the Redis store.
fn finish(
    conn: &Connection,
    task: &DeliveryTask,
    outcome: &DeliveryOutcome,
) -> Result<(), StoreError> {
    let settled = rules::settle(outcome);
    let attempt = (settled.attempt.map(serde_json::to_string))
        .transpose()
        .map_err(StoreError::bug)?;
    let updated = conn
        .prepare_cached(
            "UPDATE deliveries SET lease_until = 0, \
               status = coalesce(?3, status), \
               attempts = CASE WHEN ?4 IS NULL THEN attempts \
                 ELSE json_insert(attempts, '$[#]', json(?4)) END, \
               next_attempt_at = CASE WHEN ?5 IS NOT NULL THEN ?5 \
                 WHEN ?3 IS NOT NULL THEN NULL ELSE next_attempt_at END \
             WHERE sub_id = ?1 AND event_id = ?2 AND lease_until > 0 \
               AND (?6 = 0 OR status = 'pending')",
        )
        .and_then(|mut s| {
            s.execute(params![
                task.subscription.id.as_str(),
                task.event_id.as_str(),
                settled.status.map(DeliveryStatus::as_str),
                attempt,
                settled.next_attempt_at.map(|t| t.timestamp_millis()),
                settled.only_if_pending,
            ])
        })
        .map_err(sqlite)?;
    if updated > 0 && settled.disables_subscription {
        (conn.execute(
            "UPDATE subscriptions SET disabled = 1 WHERE id = ?1",
            [task.subscription.id.as_str()],
        ))
        .map_err(sqlite)?;
    }
    Ok(())
}

fn record_from_row(row: &rusqlite::Row<'_>) -> Result<DeliveryRecord, StoreError> {
    let text = |i: usize| row.get::<_, String>(i).map_err(sqlite);
    let status = DeliveryStatus::parse(&text(2)?).ok_or_else(|| corrupt("a delivery's status"))?;
    Ok(DeliveryRecord {
        event_id: EventId::from_trusted(text(0)?),
        event_type: EventType::parse(&text(1)?).ok_or_else(|| corrupt("a delivery's type"))?,
        status,
        attempts: serde_json::from_str(&text(3)?)
            .map_err(|e| corrupt(format!("a delivery's attempts: {e}")))?,
        next_attempt_at: (row.get::<_, Option<i64>>(4).map_err(sqlite)?)
            .filter(|_| status == DeliveryStatus::Pending)
            .map(from_millis),
        created_at: from_millis(row.get(5).map_err(sqlite)?),
    })
}

#[async_trait]
impl Outbox for EmbeddedStore {
    async fn take_send_slots(
        &self,
        sub: &SubscriptionId,
        rate: u32,
        wanted: u32,
    ) -> Result<SlotGrant, StoreError> {
        let mut slots = self.send_slots.lock().unwrap_or_else(|p| p.into_inner());
        let taken = slots.entry(sub.clone()).or_default();
        let grant = rules::take_slots(taken, now_millis().timestamp_millis(), rate, wanted);
        if taken.is_empty() {
            slots.remove(sub);
        }
        Ok(grant)
    }

    async fn enqueue_events(&self, events: &[Event]) -> Result<(), StoreError> {
        let events = events.to_vec();
        self.write(move |conn| {
            let subs = super::subscriptions::enabled_subscriptions(conn)?;
            events.iter().try_for_each(|e| enqueue(conn, e, &subs))
        })
        .await?;
        self.due.notify_one();
        Ok(())
    }

    async fn claim_deliveries(
        &self,
        _consumer: &str,
        max: usize,
        wait: Duration,
        lease: Duration,
    ) -> Result<Vec<Leased>, StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let now = now_millis().timestamp_millis();
            let lease_until = now + lease.as_millis() as i64;
            let (tasks, next_due) = self
                .write_in_background(move |conn| claim(conn, now, lease_until, max))
                .await?;
            let now_instant = tokio::time::Instant::now();
            if !tasks.is_empty() || now_instant >= deadline {
                return Ok(tasks);
            }
            // Sleep until the next scheduled delivery, a new event, or the deadline.
            let until_due = next_due
                .map(|due| {
                    Duration::from_millis((due - now_millis().timestamp_millis()).max(1) as u64)
                })
                .unwrap_or(wait);
            let nap = until_due.min(deadline - now_instant);
            let _ = tokio::time::timeout(nap, self.due.notified()).await;
        }
    }

    async fn finish_deliveries(
        &self,
        done: &[(Leased, DeliveryOutcome)],
    ) -> Result<(), StoreError> {
        let done: Vec<(DeliveryTask, DeliveryOutcome)> = done
            .iter()
            .map(|(l, o)| (l.task.clone(), o.clone()))
            .collect();
        self.write_in_background(move |conn| {
            done.iter()
                .try_for_each(|(task, outcome)| finish(conn, task, outcome))
        })
        .await?;
        self.due.notify_one();
        Ok(())
    }

    async fn list_deliveries(
        &self,
        sub: &SubscriptionId,
        status: Option<DeliveryStatus>,
        before: Option<Position>,
        limit: usize,
    ) -> Result<Page<DeliveryRecord>, StoreError> {
        let before = before.map_or((i64::MAX, String::new()), |p| (p.ms, p.id));
        let (sub, status) = (sub.clone(), status.map(DeliveryStatus::as_str));
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT event_id, event_type, status, attempts, next_attempt_at, created_at \
                     FROM deliveries WHERE sub_id = ?1 AND (?2 IS NULL OR status = ?2) \
                     AND (created_at < ?3 OR (created_at = ?3 AND (?4 = '' OR event_id < ?4))) \
                     ORDER BY created_at DESC, event_id DESC LIMIT ?5",
                )
                .map_err(sqlite)?;
            let mut rows = stmt
                .query(params![
                    sub.as_str(),
                    status,
                    before.0,
                    before.1,
                    limit as i64 + 1
                ])
                .map_err(sqlite)?;
            let mut items = Vec::with_capacity(limit + 1);
            while let Some(row) = rows.next().map_err(sqlite)? {
                items.push(record_from_row(row)?);
            }
            Ok(Page::of(items, limit, |r| {
                Position::of(&r.created_at, r.event_id.as_str())
            }))
        })
        .await
    }

    async fn retry_delivery(
        &self,
        sub: &SubscriptionId,
        event: &EventId,
    ) -> Result<bool, StoreError> {
        let (sub, event) = (sub.clone(), event.clone());
        let now = now_millis().timestamp_millis();
        let found = self
            .write(move |conn| {
                conn.execute(
                    "UPDATE deliveries SET status = 'pending', next_attempt_at = ?3, lease_until = 0 \
                     WHERE sub_id = ?1 AND event_id = ?2",
                    params![sub.as_str(), event.as_str(), now],
                )
                .map(|n| n > 0)
                .map_err(sqlite)
            })
            .await?;
        self.due.notify_one();
        Ok(found)
    }

    async fn queue_depth(&self) -> Result<QueueDepth, StoreError> {
        self.read(|conn| {
            let (count, oldest): (i64, Option<i64>) = conn
                .query_row(
                    "SELECT count(*), min(created_at) FROM deliveries WHERE status = 'pending'",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(sqlite)?;
            let now = now_millis().timestamp_millis();
            Ok(QueueDepth {
                pending: count as u64,
                oldest: oldest.map(|o| Duration::from_millis((now - o).max(0) as u64)),
            })
        })
        .await
    }
}
