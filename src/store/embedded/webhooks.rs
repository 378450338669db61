//! Webhook subscriptions and deliveries in SQLite: see the schema in the parent module.

use super::super::{
    Attempt, DeliveryOutcome, DeliveryRecord, DeliveryStatus, DeliveryTask, Page, Position,
    StoreError, Subscription, SubscriptionPatch, WebhookStore,
};
use super::{EmbeddedStore, unavailable};
use crate::domain::{CampaignId, from_millis, now_millis};
use crate::events::EventType;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use std::time::Duration;

const SUB_COLUMNS: &str =
    "id, url, event_types, campaign_ids, description, secret, created_at, disabled";

fn json_list<T>(items: &Option<Vec<T>>, name: impl Fn(&T) -> &str) -> Option<String> {
    items.as_ref().map(|v| {
        serde_json::to_string(&v.iter().map(&name).collect::<Vec<_>>()).unwrap_or_default()
    })
}

fn sub_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Subscription> {
    let list = |i: usize| -> rusqlite::Result<Option<Vec<String>>> {
        Ok(row
            .get::<_, Option<String>>(i)?
            .and_then(|s| serde_json::from_str(&s).ok()))
    };
    Ok(Subscription {
        id: row.get(0)?,
        url: row.get(1)?,
        event_types: list(2)?.map(|t| t.iter().filter_map(|t| EventType::parse(t)).collect()),
        campaign_ids: list(3)?.map(|c| c.into_iter().map(CampaignId::from_trusted).collect()),
        description: row.get(4)?,
        secret: row.get(5)?,
        created_at: from_millis(row.get(6)?),
        disabled: row.get(7)?,
    })
}

/// Every subscription; the fan-out of an event filters them.
pub(super) fn load_subscriptions(conn: &Connection) -> Result<Vec<Subscription>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {SUB_COLUMNS} FROM subscriptions WHERE disabled = 0"
    ))
    .and_then(|mut s| s.query_map([], sub_from_row)?.collect())
    .map_err(unavailable)
}

fn find_sub(conn: &Connection, id: &str) -> Result<Option<Subscription>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {SUB_COLUMNS} FROM subscriptions WHERE id = ?1"
    ))
    .and_then(|mut s| s.query_row([id], sub_from_row).optional())
    .map_err(unavailable)
}

fn record_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryRecord> {
    let status = DeliveryStatus::parse(&row.get::<_, String>(2)?).unwrap_or(DeliveryStatus::Failed);
    Ok(DeliveryRecord {
        event_id: row.get(0)?,
        event_type: EventType::parse(&row.get::<_, String>(1)?).unwrap_or(EventType::LinkClicked),
        status,
        attempts: serde_json::from_str(&row.get::<_, String>(3)?).unwrap_or_default(),
        next_attempt_at: row
            .get::<_, Option<i64>>(4)?
            .filter(|_| status == DeliveryStatus::Pending)
            .map(from_millis),
        created_at: from_millis(row.get(5)?),
    })
}

/// Records one outcome and releases the lease; an outcome whose lease was already released
/// (written before) changes nothing, as in the Redis store.
fn finish(
    conn: &Connection,
    sub_id: &str,
    event_id: &str,
    outcome: &DeliveryOutcome,
) -> rusqlite::Result<()> {
    let append = |attempt: &Attempt, status: &str, next: Option<i64>| {
        conn.execute(
            "UPDATE deliveries SET status = ?3, next_attempt_at = ?4, lease_until = 0, \
             attempts = json_insert(attempts, '$[#]', json(?5)) \
             WHERE sub_id = ?1 AND event_id = ?2 AND lease_until > 0",
            params![
                sub_id,
                event_id,
                status,
                next,
                serde_json::to_string(attempt).unwrap_or_default()
            ],
        )
    };
    match outcome {
        DeliveryOutcome::Delivered(a) => append(a, "delivered", None),
        DeliveryOutcome::Retry(a, at) => append(a, "pending", Some(at.timestamp_millis())),
        DeliveryOutcome::Failed(a) => append(a, "failed", None),
        DeliveryOutcome::Gone(a) => append(a, "failed", None).and_then(|_| {
            conn.execute(
                "UPDATE subscriptions SET disabled = 1 WHERE id = ?1",
                [sub_id],
            )
        }),
        DeliveryOutcome::Deferred(at) => conn.execute(
            "UPDATE deliveries SET next_attempt_at = ?3, lease_until = 0 \
             WHERE sub_id = ?1 AND event_id = ?2 AND lease_until > 0",
            params![sub_id, event_id, at.timestamp_millis()],
        ),
        DeliveryOutcome::Dropped => conn.execute(
            "UPDATE deliveries SET status = 'failed', lease_until = 0 \
             WHERE sub_id = ?1 AND event_id = ?2 AND status = 'pending' AND lease_until > 0",
            params![sub_id, event_id],
        ),
    }
    .map(drop)
}

#[async_trait]
impl WebhookStore for EmbeddedStore {
    async fn create_subscription(&self, sub: &Subscription) -> Result<(), StoreError> {
        let sub = sub.clone();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO subscriptions (id, url, event_types, campaign_ids, description, \
                 secret, created_at, disabled) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    sub.id,
                    sub.url,
                    json_list(&sub.event_types, |t| t.as_str()),
                    json_list(&sub.campaign_ids, |c| c.as_str()),
                    sub.description,
                    sub.secret,
                    sub.created_at.timestamp_millis(),
                    sub.disabled
                ],
            )
            .map(drop)
            .map_err(unavailable)
        })
        .await
    }

    async fn get_subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| find_sub(conn, &id)).await
    }

    async fn list_subscriptions(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Subscription>, StoreError> {
        let after = match cursor {
            Some(c) => Position::parse(c)?,
            None => Position {
                ms: i64::MIN,
                id: String::new(),
            },
        };
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {SUB_COLUMNS} FROM subscriptions WHERE (created_at, id) > (?1, ?2) \
                     ORDER BY created_at, id LIMIT ?3"
                ))
                .map_err(unavailable)?;
            let mut items: Vec<Subscription> = stmt
                .query_map(params![after.ms, after.id, limit as i64 + 1], sub_from_row)
                .and_then(|rows| rows.collect())
                .map_err(unavailable)?;
            let next_cursor = (items.len() > limit).then(|| {
                items.truncate(limit);
                (items.last())
                    .map(|s| Position::of(&s.created_at, &s.id).render())
                    .unwrap_or_default()
            });
            Ok(Page { items, next_cursor })
        })
        .await
    }

    async fn update_subscription(
        &self,
        id: &str,
        patch: &SubscriptionPatch,
    ) -> Result<Option<Subscription>, StoreError> {
        let (id, patch) = (id.to_owned(), patch.clone());
        let updated = self
            .write(move |conn| {
                let Some(mut sub) = find_sub(conn, &id)? else {
                    return Ok(None);
                };
                patch.apply(&mut sub);
                conn.execute(
                    "UPDATE subscriptions SET url = ?2, event_types = ?3, campaign_ids = ?4, \
                     description = ?5, secret = ?6, disabled = ?7 WHERE id = ?1",
                    params![
                        id,
                        sub.url,
                        json_list(&sub.event_types, |t| t.as_str()),
                        json_list(&sub.campaign_ids, |c| c.as_str()),
                        sub.description,
                        sub.secret,
                        sub.disabled
                    ],
                )
                .map_err(unavailable)?;
                Ok(Some(sub))
            })
            .await?;
        Ok(updated)
    }

    async fn delete_subscription(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.write(move |conn| {
            let deleted = conn
                .execute("DELETE FROM subscriptions WHERE id = ?1", [&id])
                .map_err(unavailable)?;
            conn.execute("DELETE FROM deliveries WHERE sub_id = ?1", [&id])
                .map_err(unavailable)?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn claim_deliveries(
        &self,
        _consumer: &str,
        max: usize,
        wait: Duration,
        lease: Duration,
    ) -> Result<Vec<DeliveryTask>, StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let now = now_millis().timestamp_millis();
            let lease_until = now + lease.as_millis() as i64;
            let (tasks, next_due) = self
                .write(move |conn| {
                    let mut claim = conn
                        .prepare_cached(
                            "UPDATE deliveries SET lease_until = ?2 WHERE rowid IN ( \
                               SELECT rowid FROM deliveries WHERE status = 'pending' \
                               AND next_attempt_at <= ?1 AND lease_until <= ?1 \
                               ORDER BY next_attempt_at LIMIT ?3) \
                             RETURNING sub_id, event_id, attempts",
                        )
                        .map_err(unavailable)?;
                    let claimed: Vec<(String, String, String)> = claim
                        .query_map(params![now, lease_until, max as i64], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                        })
                        .and_then(|rows| rows.collect())
                        .map_err(unavailable)?;
                    let mut tasks = Vec::with_capacity(claimed.len());
                    for (sub_id, event_id, attempts) in claimed {
                        let event: Option<(String, String)> = conn
                            .prepare_cached("SELECT event_type, body FROM events WHERE id = ?1")
                            .and_then(|mut s| {
                                s.query_row([&event_id], |r| Ok((r.get(0)?, r.get(1)?)))
                                    .optional()
                            })
                            .map_err(unavailable)?;
                        let sub = find_sub(conn, &sub_id)?;
                        let usable = match (sub, event) {
                            (Some(sub), Some((t, body))) if !sub.disabled => {
                                EventType::parse(&t).map(|t| (sub, t, body))
                            }
                            _ => None,
                        };
                        let Some((subscription, event_type, body)) = usable else {
                            // Disabled subscription or expired event: nothing to send.
                            conn.execute(
                                "UPDATE deliveries SET status = 'failed', lease_until = 0 \
                                 WHERE sub_id = ?1 AND event_id = ?2",
                                params![sub_id, event_id],
                            )
                            .map_err(unavailable)?;
                            continue;
                        };
                        let attempts_made = serde_json::from_str::<Vec<Attempt>>(&attempts)
                            .map_or(0, |a| a.len() as u32);
                        tasks.push(DeliveryTask {
                            subscription,
                            event_id,
                            event_type,
                            body,
                            attempts_made,
                            lease: String::new(),
                        });
                    }
                    let next_due: Option<i64> = conn
                        .query_row(
                            "SELECT min(max(next_attempt_at, lease_until)) FROM deliveries \
                             WHERE status = 'pending'",
                            [],
                            |r| r.get(0),
                        )
                        .map_err(unavailable)?;
                    Ok((tasks, next_due))
                })
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
        done: &[(DeliveryTask, DeliveryOutcome)],
    ) -> Result<(), StoreError> {
        let done: Vec<(String, String, DeliveryOutcome)> = done
            .iter()
            .map(|(t, o)| (t.subscription.id.clone(), t.event_id.clone(), o.clone()))
            .collect();
        self.write(move |conn| {
            done.iter()
                .try_for_each(|(sub_id, event_id, outcome)| finish(conn, sub_id, event_id, outcome))
                .map_err(unavailable)
        })
        .await?;
        self.due.notify_one();
        Ok(())
    }

    async fn list_deliveries(
        &self,
        sub_id: &str,
        status: Option<DeliveryStatus>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<DeliveryRecord>, StoreError> {
        let before = match cursor {
            None => (i64::MAX, String::new()),
            Some(c) => Position::parse(c).map(|p| (p.ms, p.id))?,
        };
        let (sub_id, status) = (sub_id.to_owned(), status.map(DeliveryStatus::as_str));
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT event_id, event_type, status, attempts, next_attempt_at, created_at \
                     FROM deliveries WHERE sub_id = ?1 AND (?2 IS NULL OR status = ?2) \
                     AND (created_at < ?3 OR (created_at = ?3 AND (?4 = '' OR event_id < ?4))) \
                     ORDER BY created_at DESC, event_id DESC LIMIT ?5",
                )
                .map_err(unavailable)?;
            let mut items: Vec<DeliveryRecord> = stmt
                .query_map(
                    params![sub_id, status, before.0, before.1, limit as i64 + 1],
                    record_from_row,
                )
                .and_then(|rows| rows.collect())
                .map_err(unavailable)?;
            let next_cursor = (items.len() > limit).then(|| {
                items.truncate(limit);
                items
                    .last()
                    .map(|r| Position::of(&r.created_at, &r.event_id).render())
                    .unwrap_or_default()
            });
            Ok(Page { items, next_cursor })
        })
        .await
    }

    async fn retry_delivery(&self, sub_id: &str, event_id: &str) -> Result<bool, StoreError> {
        let (sub_id, event_id) = (sub_id.to_owned(), event_id.to_owned());
        let now = now_millis().timestamp_millis();
        let found = self
            .write(move |conn| {
                conn.execute(
                    "UPDATE deliveries SET status = 'pending', next_attempt_at = ?3, lease_until = 0 \
                     WHERE sub_id = ?1 AND event_id = ?2",
                    params![sub_id, event_id, now],
                )
                .map(|n| n > 0)
                .map_err(unavailable)
            })
            .await?;
        self.due.notify_one();
        Ok(found)
    }

    async fn queue_depth(&self) -> Result<(u64, Option<Duration>), StoreError> {
        self.read(|conn| {
            let (count, oldest): (i64, Option<i64>) = conn
                .query_row(
                    "SELECT count(*), min(created_at) FROM deliveries WHERE status = 'pending'",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(unavailable)?;
            let now = now_millis().timestamp_millis();
            Ok((
                count as u64,
                oldest.map(|o| Duration::from_millis((now - o).max(0) as u64)),
            ))
        })
        .await
    }
}
