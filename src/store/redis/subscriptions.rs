//! Webhook subscriptions in Redis: a JSON record each, its filter, and a list order, under
//! `{subs}`; and a copy of every filter in each partition, where the fan-out reads it.
//!
//! A subscription sees every event created after it was answered: its copies are written
//! before the answer. On a deletion the record goes first: a delivery a stale copy still
//! queues is dropped when claimed, as its subscription is gone.

use super::RedisStore;
use super::keys::{self, Partition};
use crate::domain::{
    CampaignId, EventType, Page, Position, Subscription, SubscriptionFilter, SubscriptionId,
    SubscriptionPatch, from_millis,
};
use crate::store::{StoreError, SubscriptionStore};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rate_limit: Option<u32>,
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
        rate_limit: sub.rate_limit,
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
        rate_limit: r.rate_limit,
    })
}

fn order_member(sub: &Subscription) -> String {
    Position::of(&sub.created_at, sub.id.as_str()).render()
}

impl RedisStore {
    async fn write_subscription(&self, sub: &Subscription) -> Result<(), StoreError> {
        let filter = sub.filter.encode(sub.disabled);
        self.copy_filter(sub.id.as_str(), Some(&filter)).await?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset(keys::SUBS, sub.id.as_str(), encode(sub)?)
            .ignore()
            .hset(keys::SUB_FILTERS, sub.id.as_str(), &filter)
            .ignore()
            .zadd(keys::SUB_ORDER, order_member(sub), 0)
            .ignore();
        self.query_pipe(&pipe).await
    }

    /// Writes (or with `None` removes) a subscription's filter in every partition.
    async fn copy_filter(&self, id: &str, filter: Option<&str>) -> Result<(), StoreError> {
        let writes = Partition::all()
            .map(|p| {
                let mut cmd = redis::cmd(if filter.is_some() { "HSET" } else { "HDEL" });
                cmd.arg(p.sub_filters()).arg(id);
                if let Some(filter) = filter {
                    cmd.arg(filter);
                }
                cmd
            })
            .collect();
        self.spread::<redis::Value>(writes).await.map(drop)
    }

    /// Disables a subscription that answered `410` (its partition's copy is disabled by
    /// the script that settled the delivery).
    pub(super) async fn disable_subscription(&self, id: &str) -> Result<(), StoreError> {
        let mut get = redis::cmd("HGET");
        get.arg(keys::SUB_FILTERS).arg(id);
        let Some(filter): Option<String> = self.query(&get).await? else {
            return Ok(());
        };
        let disabled = format!("1{}", filter.get(1..).unwrap_or(""));
        self.copy_filter(id, Some(&disabled)).await?;
        let mut set = redis::cmd("HSET");
        set.arg(keys::SUB_FILTERS).arg(id).arg(&disabled);
        self.query(&set).await
    }

    /// Makes every partition's copy of the filters match `{subs}`: after a write that
    /// failed half-way, or a partition that lost its data.
    pub async fn reconcile_filter_copies(&self) -> Result<(), StoreError> {
        let mut all = redis::cmd("HGETALL");
        all.arg(keys::SUB_FILTERS);
        let filters: HashMap<String, String> = self.query(&all).await?;
        let reads = Partition::all()
            .map(|p| {
                let mut cmd = redis::cmd("HGETALL");
                cmd.arg(p.sub_filters());
                cmd
            })
            .collect();
        let copies: Vec<HashMap<String, String>> = self.spread(reads).await?;
        let mut fixes = Vec::new();
        for (p, copy) in Partition::all().zip(copies) {
            for (id, filter) in &filters {
                if copy.get(id) != Some(filter) {
                    let mut set = redis::cmd("HSET");
                    set.arg(p.sub_filters()).arg(id).arg(filter);
                    fixes.push(set);
                }
            }
            for id in copy.keys().filter(|id| !filters.contains_key(*id)) {
                let mut del = redis::cmd("HDEL");
                del.arg(p.sub_filters()).arg(id);
                fixes.push(del);
            }
        }
        if !fixes.is_empty() {
            tracing::info!(
                fixes = fixes.len(),
                "subscription filter copies brought in step"
            );
        }
        self.spread::<redis::Value>(fixes).await.map(drop)
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
            .ignore();
        self.query_pipe::<()>(&pipe).await?;
        self.copy_filter(id.as_str(), None).await?;
        let logs = Partition::all()
            .map(|p| {
                let mut del = redis::cmd("DEL");
                del.arg(p.log(id.as_str()));
                del
            })
            .collect();
        self.spread::<redis::Value>(logs).await?;
        Ok(true)
    }
}
