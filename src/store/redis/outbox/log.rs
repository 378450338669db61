//! The delivery log of a subscription, newest first.

use super::RedisStore;
use crate::domain::{
    DeliveryRecord, DeliveryStatus, EventId, EventType, Page, Position, SubscriptionId, from_millis,
};
use crate::store::StoreError;
use crate::store::redis::keys::Partition;
use std::collections::HashMap;

/// The log is kept in parts, one per partition: the page is the newest `limit` of the
/// newest `limit + 1` of each part.
pub(super) async fn list_deliveries(
    store: &RedisStore,
    sub: &SubscriptionId,
    status: Option<DeliveryStatus>,
    before: Option<Position>,
    limit: usize,
) -> Result<Page<DeliveryRecord>, StoreError> {
    let parts = Partition::all().map(|p| list_part(store, p, sub, status, before.as_ref(), limit));
    let mut items: Vec<DeliveryRecord> = (futures::future::try_join_all(parts).await?)
        .into_iter()
        .flatten()
        .collect();
    items.sort_by(|a, b| {
        (b.created_at, b.event_id.as_str()).cmp(&(a.created_at, a.event_id.as_str()))
    });
    items.truncate(limit + 1);
    Ok(Page::of(items, limit, |r| {
        Position::of(&r.created_at, r.event_id.as_str())
    }))
}

/// Up to `limit + 1` records of one partition's part of the log, newest first.
async fn list_part(
    store: &RedisStore,
    partition: Partition,
    sub: &SubscriptionId,
    status: Option<DeliveryStatus>,
    before: Option<&Position>,
    limit: usize,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    // Newest first, and among equal times by event id descending, as `ZRANGE … REV` orders
    // them. One fixed upper bound and a growing offset: every member is looked at once,
    // however many share a timestamp, and events added meanwhile (newer) are not.
    let max = before.map_or("+inf".to_owned(), |p| p.ms.to_string());
    let mut items: Vec<DeliveryRecord> = Vec::new();
    let batch = (limit + 1).max(100);
    let mut offset = 0;
    while items.len() <= limit {
        let mut range = redis::cmd("ZRANGE");
        range
            .arg(partition.log(sub.as_str()))
            .arg(&max)
            .arg("-inf")
            .arg("BYSCORE")
            .arg("REV");
        range.arg("LIMIT").arg(offset).arg(batch).arg("WITHSCORES");
        let members: Vec<(String, f64)> = store.query(&range).await?;
        offset += members.len();
        let fresh: Vec<&String> = (members.iter())
            .filter(|(event, ms)| match before {
                Some(p) => (*ms as i64) < p.ms || (*ms as i64 == p.ms && *event < p.id),
                None => true,
            })
            .map(|(event, _)| event)
            .collect();
        let mut pipe = redis::pipe();
        for event in &fresh {
            pipe.hgetall(partition.delivery(sub.as_str(), event));
        }
        let hashes: Vec<HashMap<String, String>> = if fresh.is_empty() {
            Vec::new()
        } else {
            store.query_pipe(&pipe).await?
        };
        for (event, h) in fresh.into_iter().zip(hashes) {
            // Gone with the retention: not in the log any more.
            if let Some(record) = delivery_record(event, &h)?
                && status.is_none_or(|s| s == record.status)
                && items.len() <= limit
            {
                items.push(record);
            }
        }
        if members.len() < batch {
            break;
        }
    }
    Ok(items)
}

fn delivery_record(
    event: &str,
    h: &HashMap<String, String>,
) -> Result<Option<DeliveryRecord>, StoreError> {
    if h.is_empty() {
        return Ok(None);
    }
    let corrupt = |what: &str| StoreError::Corrupt(format!("delivery of {event}: {what}"));
    let field = |k: &str| h.get(k).ok_or_else(|| corrupt(k));
    let status = DeliveryStatus::parse(field("status")?).ok_or_else(|| corrupt("status"))?;
    let next = match h.get("next").map(String::as_str) {
        None | Some("") => None,
        Some(n) => Some(from_millis(n.parse().map_err(|_| corrupt("next"))?)),
    };
    Ok(Some(DeliveryRecord {
        event_id: EventId::from_trusted(event.to_owned()),
        event_type: EventType::parse(field("t")?).ok_or_else(|| corrupt("type"))?,
        status,
        attempts: serde_json::from_str(field("attempts")?).map_err(|_| corrupt("attempts"))?,
        next_attempt_at: next.filter(|_| status == DeliveryStatus::Pending),
        created_at: from_millis(field("at")?.parse().map_err(|_| corrupt("time"))?),
    }))
}
