//! Webhook subscriptions and deliveries in Redis: see the key layout in the parent module.

use super::super::{
    Attempt, DeliveryOutcome, DeliveryRecord, DeliveryStatus, DeliveryTask, Page, Position,
    StoreError, Subscription, SubscriptionPatch, WebhookStore,
};
use super::{LuaScript, RedisStore, eval, unavailable};
use crate::domain::{CampaignId, from_millis, now_millis};
use crate::events::EventType;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

const SUBS: &str = "akti:{q}:subs";
const SUB_FILTERS: &str = "akti:{q}:sub-filters";
const SUB_ORDER: &str = "akti:{q}:sub-order";
const READY: &str = "akti:{q}:ready";
const RETRY: &str = "akti:{q}:retry";
const GROUP: &str = "dispatchers";
/// Most scheduled retries moved to `ready` per claim.
const MOVE_BATCH: usize = 500;

fn delivery_key(sub: &str, event: &str) -> String {
    format!("akti:{{q}}:delivery:{sub}:{event}")
}

fn log_key(sub: &str) -> String {
    format!("akti:{{q}}:log:{sub}")
}

/// Moves due retries into the ready stream. ARGV: now (ms), batch size.
const MOVE_DUE: &str = r"
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  local sub, event = string.match(member, '^([^|]+)|(.+)$')
  redis.call('XADD', 'akti:{q}:ready', '*', 's', sub, 'e', event)
  redis.call('ZREM', KEYS[1], member)
end
return #due";

/// Records outcomes and acknowledges their leases. ARGV: groups of six: stream entry id,
/// outcome, attempt JSON, next (ms), sub id, event id.
///
/// An outcome is applied only if its entry was still unacknowledged: a call retried after
/// a timeout (whose first run may have gone through) or a lease another dispatcher took
/// over and finished first finds it acknowledged and changes nothing. One call per
/// [`OUTCOMES_PER_CALL`] outcomes; every key is under `{q}`, so a call stays in one Cluster
/// slot.
const FINISH: &str = r"
local Q = 'akti:{q}:'
local entries = {}
for i = 1, #ARGV, 6 do
  local entry, outcome, attempt, next_ms = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local sub, event = ARGV[i + 4], ARGV[i + 5]
  local key = Q .. 'delivery:' .. sub .. ':' .. event
  local member = sub .. '|' .. event
  entries[#entries + 1] = entry
  if redis.call('XACK', Q .. 'ready', 'dispatchers', entry) == 0 then
    -- Applied before.
  elseif outcome == 'dropped' then
    if redis.call('HGET', key, 'status') == 'pending' then
      redis.call('HSET', key, 'status', 'failed', 'next', '')
    end
  elseif outcome == 'deferred' then
    redis.call('ZADD', Q .. 'retry', next_ms, member)
  else
    -- Delivery hashes are created with `attempts`, so that field answers whether the
    -- hash still exists; EXISTS is asked only for one without it.
    local attempts = redis.call('HGET', key, 'attempts')
    if attempts or redis.call('EXISTS', key) == 1 then
      if attempts == false or attempts == '[]' then
        attempts = '[' .. attempt .. ']'
      else
        attempts = string.sub(attempts, 1, -2) .. ',' .. attempt .. ']'
      end
      if outcome == 'retry' then
        redis.call('HSET', key, 'attempts', attempts, 'status', 'pending', 'next', next_ms)
        redis.call('ZADD', Q .. 'retry', next_ms, member)
      elseif outcome == 'delivered' then
        redis.call('HSET', key, 'attempts', attempts, 'status', 'delivered', 'next', '')
      else
        redis.call('HSET', key, 'attempts', attempts, 'status', 'failed', 'next', '')
        if outcome == 'gone' then
          local f = redis.call('HGET', Q .. 'sub-filters', sub)
          if f then redis.call('HSET', Q .. 'sub-filters', sub, '1' .. string.sub(f, 2)) end
        end
      end
    end
  end
end
if #entries > 0 then
  redis.call('XDEL', Q .. 'ready', unpack(entries))
end
return 1";

/// Outcomes per call of [`FINISH`].
const OUTCOMES_PER_CALL: usize = 64;

static FINISHING: std::sync::LazyLock<LuaScript> =
    std::sync::LazyLock::new(|| LuaScript::new(FINISH.to_owned()));

/// Makes a delivery due now. KEYS[1] delivery. ARGV: sub id, event id, now (ms).
const RETRY_NOW: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'status', 'pending', 'next', ARGV[3])
redis.call('ZREM', 'akti:{q}:retry', ARGV[1] .. '|' .. ARGV[2])
redis.call('XADD', 'akti:{q}:ready', '*', 's', ARGV[1], 'e', ARGV[2])
return 1";

/// A subscription as stored; `disabled` lives in the filter string, which the fan-out
/// and the 410 handling read and write inside scripts.
#[derive(Serialize, Deserialize)]
struct SubRecord {
    url: String,
    event_types: Option<Vec<String>>,
    campaign_ids: Option<Vec<String>>,
    description: Option<String>,
    secret: String,
    created_at: i64,
}

fn encode(sub: &Subscription) -> (String, String) {
    let record = SubRecord {
        url: sub.url.clone(),
        event_types: sub
            .event_types
            .as_ref()
            .map(|t| t.iter().map(|t| t.as_str().to_owned()).collect()),
        campaign_ids: sub
            .campaign_ids
            .as_ref()
            .map(|c| c.iter().map(|c| c.as_str().to_owned()).collect()),
        description: sub.description.clone(),
        secret: sub.secret.clone(),
        created_at: sub.created_at.timestamp_millis(),
    };
    let list = |items: Option<Vec<&str>>| match items {
        None => String::new(),
        Some(items) => format!(",{},", items.join(",")),
    };
    let filter = format!(
        "{}|{}|{}",
        u8::from(sub.disabled),
        list(
            sub.event_types
                .as_ref()
                .map(|t| t.iter().map(|t| t.as_str()).collect())
        ),
        list(
            sub.campaign_ids
                .as_ref()
                .map(|c| c.iter().map(|c| c.as_str()).collect())
        ),
    );
    (serde_json::to_string(&record).unwrap_or_default(), filter)
}

fn decode(id: &str, json: &str, filter: Option<&str>) -> Result<Subscription, StoreError> {
    let r: SubRecord = serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("subscription {id}: {e}")))?;
    Ok(Subscription {
        id: id.to_owned(),
        url: r.url,
        event_types: r
            .event_types
            .map(|t| t.iter().filter_map(|t| EventType::parse(t)).collect()),
        campaign_ids: r
            .campaign_ids
            .map(|c| c.into_iter().map(CampaignId::from_trusted).collect()),
        description: r.description,
        secret: r.secret,
        created_at: from_millis(r.created_at),
        disabled: filter.is_some_and(|f| f.starts_with('1')),
    })
}

/// A stream entry as its id and its fields.
fn entry_fields(entry: redis::streams::StreamId) -> (String, HashMap<String, String>) {
    let fields = entry
        .map
        .iter()
        .filter_map(|(k, v)| {
            redis::from_redis_value_ref::<String>(v)
                .ok()
                .map(|v| (k.clone(), v))
        })
        .collect();
    (entry.id, fields)
}

fn order_member(sub: &Subscription) -> String {
    Position::of(&sub.created_at, &sub.id).render()
}

impl RedisStore {
    async fn write_subscription(&self, sub: &Subscription) -> Result<(), StoreError> {
        let (json, filter) = encode(sub);
        redis::pipe()
            .atomic()
            .hset(SUBS, &sub.id, json)
            .ignore()
            .hset(SUB_FILTERS, &sub.id, filter)
            .ignore()
            .zadd(SUB_ORDER, order_member(sub), 0)
            .ignore()
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(unavailable)
    }

    /// Reads the group's new entries, creating the group after a fresh start (or after
    /// Redis lost its data).
    async fn read_ready(
        &self,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<(String, HashMap<String, String>)>, StoreError> {
        let read = |mut conn: redis::aio::ConnectionManager| async move {
            let mut cmd = redis::cmd("XREADGROUP");
            cmd.arg("GROUP")
                .arg(GROUP)
                .arg(consumer)
                .arg("COUNT")
                .arg(max);
            if !wait.is_zero() {
                cmd.arg("BLOCK").arg(wait.as_millis() as u64);
            }
            cmd.arg("STREAMS").arg(READY).arg(">");
            cmd.query_async::<redis::streams::StreamReadReply>(&mut conn)
                .await
        };
        let reply = match read(self.blocking.clone()).await {
            Err(e) if e.code() == Some("NOGROUP") => {
                let created: redis::RedisResult<()> = redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(READY)
                    .arg(GROUP)
                    .arg("0")
                    .arg("MKSTREAM")
                    .query_async(&mut self.conn())
                    .await;
                if let Err(e) = created
                    && e.code() != Some("BUSYGROUP")
                {
                    return Err(unavailable(e));
                }
                read(self.blocking.clone()).await
            }
            other => other,
        }
        .map_err(unavailable)?;
        Ok(reply
            .keys
            .into_iter()
            .flat_map(|k| k.ids)
            .map(entry_fields)
            .collect())
    }

    /// Takes over entries leased by a consumer that stopped answering, at most once a
    /// second per instance.
    async fn reclaim_stale(
        &self,
        consumer: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<(String, HashMap<String, String>)>, StoreError> {
        let now = now_millis().timestamp_millis();
        let last = self.last_reclaim.load(Ordering::Relaxed);
        if now - last < 1000
            || self
                .last_reclaim
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return Ok(Vec::new());
        }
        let reply: redis::RedisResult<redis::streams::StreamAutoClaimReply> =
            redis::cmd("XAUTOCLAIM")
                .arg(READY)
                .arg(GROUP)
                .arg(consumer)
                .arg(lease.as_millis() as u64)
                .arg("0-0")
                .arg("COUNT")
                .arg(max)
                .query_async(&mut self.conn())
                .await;
        let reply = match reply {
            Ok(r) => r,
            // No group yet: nothing can be stale.
            Err(e) if e.code() == Some("NOGROUP") => return Ok(Vec::new()),
            Err(e) => return Err(unavailable(e)),
        };
        Ok(reply.claimed.into_iter().map(entry_fields).collect())
    }
}

#[async_trait]
impl WebhookStore for RedisStore {
    async fn create_subscription(&self, sub: &Subscription) -> Result<(), StoreError> {
        self.write_subscription(sub).await
    }

    async fn get_subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError> {
        let (json, filter): (Option<String>, Option<String>) = redis::pipe()
            .hget(SUBS, id)
            .hget(SUB_FILTERS, id)
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        json.map(|j| decode(id, &j, filter.as_deref())).transpose()
    }

    async fn list_subscriptions(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Subscription>, StoreError> {
        let from = match cursor {
            Some(c) => format!("({}", Position::parse(c)?.render()),
            None => "-".to_owned(),
        };
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(SUB_ORDER)
            .arg(&from)
            .arg("+")
            .arg("BYLEX")
            .arg("LIMIT")
            .arg(0)
            .arg(limit + 1)
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let mut items = Vec::new();
        let mut last_member = None;
        for member in members.iter().take(limit) {
            let id = member.split_once(':').map_or("", |(_, id)| id);
            if let Some(sub) = self.get_subscription(id).await? {
                items.push(sub);
            }
            last_member = Some(member.clone());
        }
        let next_cursor = if members.len() > limit {
            last_member
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn update_subscription(
        &self,
        id: &str,
        patch: &SubscriptionPatch,
    ) -> Result<Option<Subscription>, StoreError> {
        let Some(mut sub) = self.get_subscription(id).await? else {
            return Ok(None);
        };
        patch.apply(&mut sub);
        self.write_subscription(&sub).await?;
        Ok(Some(sub))
    }

    async fn delete_subscription(&self, id: &str) -> Result<bool, StoreError> {
        let Some(sub) = self.get_subscription(id).await? else {
            return Ok(false);
        };
        redis::pipe()
            .atomic()
            .hdel(SUBS, id)
            .ignore()
            .hdel(SUB_FILTERS, id)
            .ignore()
            .zrem(SUB_ORDER, order_member(&sub))
            .ignore()
            .del(log_key(id))
            .ignore()
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok(true)
    }

    async fn claim_deliveries(
        &self,
        consumer: &str,
        max: usize,
        wait: Duration,
        lease: Duration,
    ) -> Result<Vec<DeliveryTask>, StoreError> {
        eval(MOVE_DUE, RETRY)
            .arg(now_millis().timestamp_millis())
            .arg(MOVE_BATCH)
            .query_async::<u64>(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let mut entries = self.reclaim_stale(consumer, max, lease).await?;
        if entries.is_empty() {
            entries = self.read_ready(consumer, max, wait).await?;
        }
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        // Each subscription once per batch; per delivery one HMGET of the event and one of
        // the delivery.
        let mut subs: Vec<&str> = entries
            .iter()
            .map(|(_, f)| f.get("s").map_or("", String::as_str))
            .collect();
        subs.sort_unstable();
        subs.dedup();
        for sub in &subs {
            pipe.hget(SUBS, *sub).hget(SUB_FILTERS, *sub);
        }
        for (_, fields) in &entries {
            let sub = fields.get("s").map_or("", String::as_str);
            let event = fields.get("e").map_or("", String::as_str);
            pipe.cmd("HMGET")
                .arg(format!("akti:{{q}}:event:{event}"))
                .arg("b")
                .arg("t");
            pipe.cmd("HMGET")
                .arg(delivery_key(sub, event))
                .arg("status")
                .arg("attempts");
        }
        let values: Vec<redis::Value> = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let mut values = values.into_iter();
        let mut known: HashMap<String, Option<Subscription>> = HashMap::new();
        for sub in &subs {
            let json: Option<String> = values
                .next()
                .and_then(|v| redis::from_redis_value(v).ok())
                .flatten();
            let filter: Option<String> = values
                .next()
                .and_then(|v| redis::from_redis_value(v).ok())
                .flatten();
            let decoded = json
                .map(|j| decode(sub, &j, filter.as_deref()))
                .transpose()?;
            known.insert((*sub).to_owned(), decoded);
        }
        type Pair = (Option<String>, Option<String>);
        let rows: Vec<(
            Option<Subscription>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        )> = entries
            .iter()
            .map(|(_, f)| {
                let (body, event_type): Pair = values
                    .next()
                    .and_then(|v| redis::from_redis_value(v).ok())
                    .unwrap_or_default();
                let (status, attempts): Pair = values
                    .next()
                    .and_then(|v| redis::from_redis_value(v).ok())
                    .unwrap_or_default();
                let sub = known
                    .get(f.get("s").map_or("", String::as_str))
                    .cloned()
                    .flatten();
                (sub, body, event_type, status, attempts)
            })
            .collect();
        let mut tasks = Vec::with_capacity(entries.len());
        let mut dropped = Vec::new();
        for ((entry, fields), (subscription, body, event_type, status, attempts)) in
            entries.into_iter().zip(rows)
        {
            let sub_id = fields.get("s").cloned().unwrap_or_default();
            let event_id = fields.get("e").cloned().unwrap_or_default();
            let usable = match (
                subscription,
                body,
                event_type.as_deref().and_then(EventType::parse),
            ) {
                (Some(sub), Some(body), Some(event_type))
                    if !sub.disabled && status.as_deref() == Some("pending") =>
                {
                    Some((sub, body, event_type))
                }
                _ => None,
            };
            let Some((subscription, body, event_type)) = usable else {
                // Deleted or disabled subscription, expired event, or already settled:
                // release the entry; a pending delivery becomes failed (replayable).
                dropped.push((entry, sub_id, event_id));
                continue;
            };
            let attempts_made = attempts
                .as_deref()
                .and_then(|a| serde_json::from_str::<Vec<Attempt>>(a).ok())
                .map_or(0, |a| a.len() as u32);
            tasks.push(DeliveryTask {
                subscription,
                event_id,
                event_type,
                body,
                attempts_made,
                lease: entry,
            });
        }
        if !dropped.is_empty() {
            let mut pipe = redis::pipe();
            for chunk in dropped.chunks(OUTCOMES_PER_CALL) {
                let mut cmd = FINISHING.call(super::events::Q_ROUTE);
                for (entry, sub_id, event_id) in chunk {
                    cmd.arg(entry)
                        .arg("dropped")
                        .arg("")
                        .arg(0)
                        .arg(sub_id)
                        .arg(event_id);
                }
                pipe.add_command(cmd).ignore();
            }
            self.query_scripted::<()>(&FINISHING, &pipe).await?;
        }
        Ok(tasks)
    }

    async fn finish_deliveries(
        &self,
        done: &[(DeliveryTask, DeliveryOutcome)],
    ) -> Result<(), StoreError> {
        if done.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for chunk in done.chunks(OUTCOMES_PER_CALL) {
            let mut cmd = FINISHING.call(super::events::Q_ROUTE);
            for (task, outcome) in chunk {
                let (name, attempt, next) = match outcome {
                    DeliveryOutcome::Delivered(a) => ("delivered", Some(a), None),
                    DeliveryOutcome::Retry(a, at) => ("retry", Some(a), Some(*at)),
                    DeliveryOutcome::Failed(a) => ("failed", Some(a), None),
                    DeliveryOutcome::Gone(a) => ("gone", Some(a), None),
                    DeliveryOutcome::Deferred(at) => ("deferred", None, Some(*at)),
                    DeliveryOutcome::Dropped => ("dropped", None, None),
                };
                let attempt = attempt
                    .map(|a| serde_json::to_string(a).unwrap_or_default())
                    .unwrap_or_default();
                cmd.arg(&task.lease)
                    .arg(name)
                    .arg(attempt)
                    .arg(next.map_or(0, |t| t.timestamp_millis()))
                    .arg(&task.subscription.id)
                    .arg(&task.event_id);
            }
            pipe.add_command(cmd).ignore();
        }
        self.query_scripted(&FINISHING, &pipe).await
    }

    async fn list_deliveries(
        &self,
        sub_id: &str,
        status: Option<DeliveryStatus>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<DeliveryRecord>, StoreError> {
        // Cursor `<ms>:<event id>`: the last item of the previous page. Newest first, and
        // among equal times by event id descending, as `ZRANGE … REV` orders them.
        let after = cursor
            .map(Position::parse)
            .transpose()?
            .map(|p| (p.ms, p.id));
        // One fixed upper bound and a growing offset: every member is looked at once,
        // however many share a timestamp, and events added meanwhile (newer) are not.
        let max = after
            .as_ref()
            .map_or("+inf".to_owned(), |(ms, _)| ms.to_string());
        let mut items: Vec<(i64, DeliveryRecord)> = Vec::new();
        let batch = (limit + 1).max(100);
        let mut offset = 0;
        'scan: loop {
            let members: Vec<(String, f64)> = redis::cmd("ZRANGE")
                .arg(log_key(sub_id))
                .arg(&max)
                .arg("-inf")
                .arg("BYSCORE")
                .arg("REV")
                .arg("LIMIT")
                .arg(offset)
                .arg(batch)
                .arg("WITHSCORES")
                .query_async(&mut self.conn())
                .await
                .map_err(unavailable)?;
            offset += members.len();
            let fresh: Vec<(String, i64)> = members
                .iter()
                .map(|(m, s)| (m.clone(), *s as i64))
                .filter(|(m, s)| match &after {
                    Some((ms, id)) => *s < *ms || (*s == *ms && m < id),
                    None => true,
                })
                .collect();
            if !fresh.is_empty() {
                let mut pipe = redis::pipe();
                for (event, _) in &fresh {
                    pipe.hgetall(delivery_key(sub_id, event));
                }
                let hashes: Vec<HashMap<String, String>> = pipe
                    .query_async(&mut self.conn())
                    .await
                    .map_err(unavailable)?;
                for ((event, ms), h) in fresh.iter().zip(hashes) {
                    let Some(record) = delivery_record(event, &h) else {
                        continue;
                    };
                    if status.is_none_or(|s| s == record.status) {
                        items.push((*ms, record));
                        if items.len() > limit {
                            break 'scan;
                        }
                    }
                }
            }
            if members.len() < batch {
                break;
            }
        }
        let next_cursor = (items.len() > limit).then(|| {
            items.truncate(limit);
            items
                .last()
                .map(|(ms, r)| Position::of(&from_millis(*ms), &r.event_id).render())
                .unwrap_or_default()
        });
        Ok(Page {
            items: items.into_iter().map(|(_, r)| r).collect(),
            next_cursor,
        })
    }

    async fn retry_delivery(&self, sub_id: &str, event_id: &str) -> Result<bool, StoreError> {
        eval(RETRY_NOW, &delivery_key(sub_id, event_id))
            .arg(sub_id)
            .arg(event_id)
            .arg(now_millis().timestamp_millis())
            .query_async::<u8>(&mut self.conn())
            .await
            .map(|n| n == 1)
            .map_err(unavailable)
    }

    async fn queue_depth(&self) -> Result<(u64, Option<Duration>), StoreError> {
        let (ready, scheduled, oldest): (u64, u64, redis::streams::StreamRangeReply) =
            redis::pipe()
                .xlen(READY)
                .zcard(RETRY)
                .cmd("XRANGE")
                .arg(READY)
                .arg("-")
                .arg("+")
                .arg("COUNT")
                .arg(1)
                .query_async(&mut self.conn())
                .await
                .map_err(unavailable)?;
        let now = now_millis().timestamp_millis();
        let age = oldest.ids.first().and_then(|e| {
            let ms: i64 = e.id.split('-').next()?.parse().ok()?;
            Some(Duration::from_millis((now - ms).max(0) as u64))
        });
        Ok((ready + scheduled, age))
    }
}

fn delivery_record(event_id: &str, h: &HashMap<String, String>) -> Option<DeliveryRecord> {
    let status = DeliveryStatus::parse(h.get("status")?)?;
    Some(DeliveryRecord {
        event_id: event_id.to_owned(),
        event_type: EventType::parse(h.get("t")?)?,
        status,
        attempts: h
            .get("attempts")
            .and_then(|a| serde_json::from_str(a).ok())
            .unwrap_or_default(),
        next_attempt_at: (status == DeliveryStatus::Pending)
            .then(|| {
                h.get("next")
                    .and_then(|n| n.parse::<i64>().ok())
                    .map(from_millis)
            })
            .flatten(),
        created_at: from_millis(h.get("at")?.parse().ok()?),
    })
}
