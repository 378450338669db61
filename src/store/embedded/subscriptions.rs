//! Webhook subscriptions in SQLite.

use super::{EmbeddedStore, corrupt, sqlite};
use crate::domain::{
    CampaignId, EventType, Page, Position, Subscription, SubscriptionFilter, SubscriptionId,
    SubscriptionPatch, from_millis,
};
use crate::store::{StoreError, SubscriptionStore};
use async_trait::async_trait;
use rusqlite::{Connection, params};

const SUB_COLUMNS: &str =
    "id, url, event_types, campaign_ids, description, secret, created_at, disabled, rate_limit";

/// A filter list as a JSON array; `None` (every one) as NULL.
fn json_list<'a>(
    items: Option<impl Iterator<Item = &'a str>>,
) -> Result<Option<String>, StoreError> {
    (items.map(|items| serde_json::to_string(&items.collect::<Vec<_>>())))
        .transpose()
        .map_err(StoreError::bug)
}

/// The values of a subscription's row, bound in the order of `SUB_COLUMNS`.
fn columns(sub: &Subscription) -> Result<(Option<String>, Option<String>), StoreError> {
    let types = json_list(
        sub.filter
            .event_types
            .as_ref()
            .map(|t| t.iter().map(|t| t.as_str())),
    )?;
    let campaigns = json_list(
        sub.filter
            .campaign_ids
            .as_ref()
            .map(|c| c.iter().map(|c| c.as_str())),
    )?;
    Ok((types, campaigns))
}

fn sub_from_row(row: &rusqlite::Row<'_>) -> Result<Subscription, StoreError> {
    let id: String = row.get(0).map_err(sqlite)?;
    let bad = |what: &str| corrupt(format!("subscription {id}: {what}"));
    let list = |i: usize| -> Result<Option<Vec<String>>, StoreError> {
        let text: Option<String> = row.get(i).map_err(sqlite)?;
        text.map(|s| serde_json::from_str(&s).map_err(|_| bad("filter list")))
            .transpose()
    };
    let event_types = list(2)?
        .map(|t| {
            t.iter()
                .map(|t| EventType::parse(t).ok_or_else(|| bad("event type")))
                .collect()
        })
        .transpose()?;
    Ok(Subscription {
        url: row.get(1).map_err(sqlite)?,
        filter: SubscriptionFilter {
            event_types,
            campaign_ids: list(3)?.map(|c| c.into_iter().map(CampaignId::from_trusted).collect()),
        },
        description: row.get(4).map_err(sqlite)?,
        secret: row.get(5).map_err(sqlite)?,
        created_at: from_millis(row.get(6).map_err(sqlite)?),
        disabled: row.get(7).map_err(sqlite)?,
        rate_limit: row.get(8).map_err(sqlite)?,
        id: SubscriptionId::from_trusted(id),
    })
}

fn rows(
    stmt: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<Subscription>, StoreError> {
    let mut rows = stmt.query(params).map_err(sqlite)?;
    let mut subs = Vec::new();
    while let Some(row) = rows.next().map_err(sqlite)? {
        subs.push(sub_from_row(row)?);
    }
    Ok(subs)
}

/// Every enabled subscription; the fan-out of an event filters them.
pub(super) fn enabled_subscriptions(conn: &Connection) -> Result<Vec<Subscription>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {SUB_COLUMNS} FROM subscriptions WHERE disabled = 0"
        ))
        .map_err(sqlite)?;
    rows(&mut stmt, [])
}

pub(super) fn find_subscription(
    conn: &Connection,
    id: &str,
) -> Result<Option<Subscription>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {SUB_COLUMNS} FROM subscriptions WHERE id = ?1"
        ))
        .map_err(sqlite)?;
    let mut rows = stmt.query([id]).map_err(sqlite)?;
    rows.next().map_err(sqlite)?.map(sub_from_row).transpose()
}

#[async_trait]
impl SubscriptionStore for EmbeddedStore {
    async fn create_subscription(&self, sub: &Subscription) -> Result<(), StoreError> {
        let sub = sub.clone();
        let (types, campaigns) = columns(&sub)?;
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO subscriptions (id, url, event_types, campaign_ids, description, \
                 secret, created_at, disabled, rate_limit) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    sub.id.as_str(),
                    sub.url,
                    types,
                    campaigns,
                    sub.description,
                    sub.secret,
                    sub.created_at.timestamp_millis(),
                    sub.disabled,
                    sub.rate_limit
                ],
            )
            .map(drop)
            .map_err(sqlite)
        })
        .await
    }

    async fn get_subscription(
        &self,
        id: &SubscriptionId,
    ) -> Result<Option<Subscription>, StoreError> {
        let id = id.clone();
        self.read(move |conn| find_subscription(conn, id.as_str()))
            .await
    }

    async fn list_subscriptions(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Page<Subscription>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {SUB_COLUMNS} FROM subscriptions WHERE (created_at, id) > (?1, ?2) \
                     ORDER BY created_at, id LIMIT ?3"
                ))
                .map_err(sqlite)?;
            let found = rows(&mut stmt, params![after.ms, after.id, limit as i64 + 1])?;
            Ok(Page::of(found, limit, |s| {
                Position::of(&s.created_at, s.id.as_str())
            }))
        })
        .await
    }

    async fn update_subscription(
        &self,
        id: &SubscriptionId,
        patch: &SubscriptionPatch,
    ) -> Result<Option<Subscription>, StoreError> {
        let (id, patch) = (id.clone(), patch.clone());
        self.write(move |conn| {
            let Some(mut sub) = find_subscription(conn, id.as_str())? else {
                return Ok(None);
            };
            patch.apply(&mut sub);
            let (types, campaigns) = columns(&sub)?;
            conn.execute(
                "UPDATE subscriptions SET url = ?2, event_types = ?3, campaign_ids = ?4, \
                 description = ?5, secret = ?6, disabled = ?7, rate_limit = ?8 WHERE id = ?1",
                params![
                    id.as_str(),
                    sub.url,
                    types,
                    campaigns,
                    sub.description,
                    sub.secret,
                    sub.disabled,
                    sub.rate_limit
                ],
            )
            .map_err(sqlite)?;
            Ok(Some(sub))
        })
        .await
    }

    async fn delete_subscription(&self, id: &SubscriptionId) -> Result<bool, StoreError> {
        let id = id.clone();
        self.write(move |conn| {
            let deleted = (conn.execute("DELETE FROM subscriptions WHERE id = ?1", [id.as_str()]))
                .map_err(sqlite)?;
            (conn.execute("DELETE FROM deliveries WHERE sub_id = ?1", [id.as_str()]))
                .map_err(sqlite)?;
            Ok(deleted > 0)
        })
        .await
    }
}
