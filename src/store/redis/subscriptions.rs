//! Webhook subscriptions in Redis: a JSON record each, its filter where the fan-out reads
//! it, and a list order.

use super::{RedisStore, keys};
use crate::domain::{
    CampaignId, EventType, Page, Position, Subscription, SubscriptionFilter, SubscriptionId,
    SubscriptionPatch, from_millis,
};
use crate::store::{StoreError, SubscriptionStore};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A subscription as stored; `disabled` lives in the filter string, which the fan-out and
/// the 410 handling read and write inside scripts.
#[derive(Serialize, Deserialize)]
struct SubRecord {
    url: String,
    event_types: Option<Vec<String>>,
    campaign_ids: Option<Vec<String>>,
    description: Option<String>,
    secret: String,
    created_at: i64,
}

fn encode(sub: &Subscription) -> Result<String, StoreError> {
    let record = SubRecord {
        url: sub.url.clone(),
        event_types: (sub.filter.event_types.as_ref())
            .map(|t| t.iter().map(|t| t.as_str().to_owned()).collect()),
        campaign_ids: (sub.filter.campaign_ids.as_ref())
            .map(|c| c.iter().map(|c| c.as_str().to_owned()).collect()),
        description: sub.description.clone(),
        secret: sub.secret.clone(),
        created_at: sub.created_at.timestamp_millis(),
    };
    serde_json::to_string(&record).map_err(StoreError::bug)
}

fn decode(
    id: &SubscriptionId,
    json: &str,
    filter: Option<&str>,
) -> Result<Subscription, StoreError> {
    let corrupt = |what: String| StoreError::Corrupt(format!("subscription {id}: {what}"));
    let r: SubRecord = serde_json::from_str(json).map_err(|e| corrupt(e.to_string()))?;
    let event_types = (r.event_types)
        .map(|t| {
            t.iter()
                .map(|t| EventType::parse(t).ok_or_else(|| corrupt(format!("event type {t:?}"))))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    Ok(Subscription {
        id: id.clone(),
        url: r.url,
        filter: SubscriptionFilter {
            event_types,
            campaign_ids: r
                .campaign_ids
                .map(|c| c.into_iter().map(CampaignId::from_trusted).collect()),
        },
        description: r.description,
        secret: r.secret,
        created_at: from_millis(r.created_at),
        disabled: filter.is_some_and(|f| f.starts_with('1')),
    })
}

fn order_member(sub: &Subscription) -> String {
    Position::of(&sub.created_at, sub.id.as_str()).render()
}

impl RedisStore {
    async fn write_subscription(&self, sub: &Subscription) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset(keys::SUBS, sub.id.as_str(), encode(sub)?)
            .ignore()
            .hset(
                keys::SUB_FILTERS,
                sub.id.as_str(),
                sub.filter.encode(sub.disabled),
            )
            .ignore()
            .zadd(keys::SUB_ORDER, order_member(sub), 0)
            .ignore();
        self.query_pipe(&pipe).await
    }

    /// The subscriptions of `ids`, in order; `None` for one that is gone.
    pub(super) async fn fetch_subscriptions(
        &self,
        ids: &[&str],
    ) -> Result<Vec<Option<Subscription>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.hget(keys::SUBS, *id).hget(keys::SUB_FILTERS, *id);
        }
        let rows: Vec<(Option<String>, Option<String>)> = self
            .query_pipe::<Vec<Option<String>>>(&pipe)
            .await?
            .chunks(2)
            .map(|pair| (pair[0].clone(), pair.get(1).cloned().flatten()))
            .collect();
        ids.iter()
            .zip(rows)
            .map(|(id, (json, filter))| {
                let id = SubscriptionId::from_trusted((*id).to_owned());
                json.map(|j| decode(&id, &j, filter.as_deref())).transpose()
            })
            .collect()
    }
}

#[async_trait]
impl SubscriptionStore for RedisStore {
    async fn create_subscription(&self, sub: &Subscription) -> Result<(), StoreError> {
        self.write_subscription(sub).await
    }

    async fn get_subscription(
        &self,
        id: &SubscriptionId,
    ) -> Result<Option<Subscription>, StoreError> {
        Ok(self
            .fetch_subscriptions(&[id.as_str()])
            .await?
            .pop()
            .flatten())
    }

    async fn list_subscriptions(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Page<Subscription>, StoreError> {
        let from = if after == Position::start() {
            "-".to_owned()
        } else {
            format!("({}", after.render())
        };
        let mut range = redis::cmd("ZRANGE");
        range
            .arg(keys::SUB_ORDER)
            .arg(&from)
            .arg("+")
            .arg("BYLEX")
            .arg("LIMIT")
            .arg(0)
            .arg(limit + 1);
        let members: Vec<String> = self.query(&range).await?;
        let ids: Vec<String> = members
            .iter()
            .map(|m| Position::parse(m).map_or_else(String::new, |p| p.id))
            .collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let found: Vec<Subscription> = self
            .fetch_subscriptions(&ids)
            .await?
            .into_iter()
            .flatten()
            .collect();
        Ok(Page::of(found, limit, |s| {
            Position::of(&s.created_at, s.id.as_str())
        }))
    }

    async fn update_subscription(
        &self,
        id: &SubscriptionId,
        patch: &SubscriptionPatch,
    ) -> Result<Option<Subscription>, StoreError> {
        let Some(mut sub) = self.get_subscription(id).await? else {
            return Ok(None);
        };
        patch.apply(&mut sub);
        self.write_subscription(&sub).await?;
        Ok(Some(sub))
    }

    async fn delete_subscription(&self, id: &SubscriptionId) -> Result<bool, StoreError> {
        let Some(sub) = self.get_subscription(id).await? else {
            return Ok(false);
        };
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hdel(keys::SUBS, id.as_str())
            .ignore()
            .hdel(keys::SUB_FILTERS, id.as_str())
            .ignore()
            .zrem(keys::SUB_ORDER, order_member(&sub))
            .ignore()
            .del(keys::log(id.as_str()))
            .ignore();
        self.query_pipe::<()>(&pipe).await?;
        Ok(true)
    }
}
