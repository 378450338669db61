//! Clicks, events and counters in Redis: see the key layout in the parent module.

use super::super::{
    ClickKind, ClickOutcome, ClickRecord, ClickStore, EVENT_RETENTION, Stats, StoreError,
};
use super::links::campaign_index;
use super::{RedisStore, eval, unavailable};
use crate::domain::{CampaignId, ShortCode, from_millis};
use crate::events::Event;
use async_trait::async_trait;
use std::collections::HashMap;

/// Routes the `{q}` scripts to the slot of their keys.
pub(super) const Q_ROUTE: &str = "akti:{q}:ready";

/// Stores an event and fans it out to one delivery per matching, enabled subscription.
/// Shared by the click and enqueue scripts.
pub(super) const ENQUEUE_LUA: &str = r"
local Q = 'akti:{q}:'
local function enqueue(event_id, event_type, campaign, body, created_ms, retention_ms)
  local ekey = Q .. 'event:' .. event_id
  redis.call('HSET', ekey, 't', event_type, 'b', body, 'at', created_ms)
  redis.call('PEXPIRE', ekey, retention_ms)
  local filters = redis.call('HGETALL', Q .. 'sub-filters')
  for i = 1, #filters, 2 do
    local sub, f = filters[i], filters[i + 1]
    local disabled, types, campaigns = string.match(f, '^(%d)|([^|]*)|(.*)$')
    if disabled == '0'
      and (types == '' or string.find(types, ',' .. event_type .. ',', 1, true))
      and (campaigns == '' or string.find(campaigns, ',' .. campaign .. ',', 1, true)) then
      local dkey = Q .. 'delivery:' .. sub .. ':' .. event_id
      redis.call('HSET', dkey, 'status', 'pending', 't', event_type, 'at', created_ms,
        'attempts', '[]', 'next', created_ms)
      redis.call('PEXPIRE', dkey, retention_ms)
      local log = Q .. 'log:' .. sub
      redis.call('ZADD', log, created_ms, event_id)
      redis.call('ZREMRANGEBYSCORE', log, '-inf', created_ms - retention_ms)
      redis.call('XADD', Q .. 'ready', '*', 's', sub, 'e', event_id)
    end
  end
end
";

/// One click. ARGV: kind (`bot`, `human`, `lead`), code, campaign, click time (ms), then
/// for `lead`: window (ms), event id, event type, body, retention (ms).
/// Answers 0 counted, 1 deduplicated, 2 emitted.
///
/// The window is judged in click time, not arrival time, so that clicks buffered through
/// a store outage and written late are deduplicated as they happened. The window key
/// lives at least one window from now, which is all a later click can need.
const CLICK_BODY: &str = r"
local kind, code, campaign, at = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local lstats, cstats = Q .. 'stats:link:' .. code, Q .. 'stats:campaign:' .. campaign
if kind == 'bot' then
  redis.call('HINCRBY', lstats, 'botClicks', 1)
  redis.call('HINCRBY', cstats, 'botClicks', 1)
  return 0
end
for _, k in ipairs({lstats, cstats}) do
  redis.call('HINCRBY', k, 'clicks', 1)
  local last = tonumber(redis.call('HGET', k, 'lastClickedAt') or '0')
  if at > last then redis.call('HSET', k, 'lastClickedAt', at) end
end
if kind ~= 'lead' then return 0 end
local window = tonumber(ARGV[5])
local wkey = Q .. 'window:' .. code
local opened = redis.call('GET', wkey)
if opened and at < tonumber(opened) + window then return 1 end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('SET', wkey, at, 'PX', math.max(at + window - now_ms, window))
redis.call('HINCRBY', lstats, 'clickEvents', 1)
redis.call('HINCRBY', cstats, 'clickEvents', 1)
enqueue(ARGV[6], ARGV[7], campaign, ARGV[8], at, tonumber(ARGV[9]))
return 2
";

/// ARGV: event id, type, campaign, body, created (ms), retention (ms).
const ENQUEUE_BODY: &str = r"
enqueue(ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]))
return 1
";

fn retention_ms() -> u64 {
    EVENT_RETENTION.as_millis() as u64
}

fn stats_from_hash(h: &HashMap<String, String>) -> Stats {
    let n = |k: &str| h.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Stats {
        clicks: n("clicks"),
        click_events: n("clickEvents"),
        bot_clicks: n("botClicks"),
        last_clicked_at: h
            .get("lastClickedAt")
            .and_then(|v| v.parse::<i64>().ok())
            .map(from_millis),
        messages_sent: n("messagesSent"),
        messages_delivered: n("messagesDelivered"),
    }
}

#[async_trait]
impl ClickStore for RedisStore {
    async fn record_clicks(&self, clicks: &[ClickRecord]) -> Result<Vec<ClickOutcome>, StoreError> {
        if clicks.is_empty() {
            return Ok(Vec::new());
        }
        let script = format!("{ENQUEUE_LUA}{CLICK_BODY}");
        let mut pipe = redis::pipe();
        for click in clicks {
            let mut cmd = eval(&script, Q_ROUTE);
            let kind = match &click.kind {
                ClickKind::Bot => "bot",
                ClickKind::Human => "human",
                ClickKind::Lead { .. } => "lead",
            };
            cmd.arg(kind)
                .arg(click.code.as_str())
                .arg(click.campaign_id.as_str())
                .arg(click.at.timestamp_millis());
            if let ClickKind::Lead { event, window } = &click.kind {
                cmd.arg(window.as_millis() as u64)
                    .arg(&event.id)
                    .arg(event.event_type.as_str())
                    .arg(&event.body)
                    .arg(retention_ms());
            }
            pipe.add_command(cmd);
        }
        let answers: Vec<u8> = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok(answers
            .into_iter()
            .map(|a| match a {
                2 => ClickOutcome::Emitted,
                1 => ClickOutcome::Deduplicated,
                _ => ClickOutcome::Counted,
            })
            .collect())
    }

    async fn enqueue_events(&self, events: &[Event]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let script = format!("{ENQUEUE_LUA}{ENQUEUE_BODY}");
        let mut pipe = redis::pipe();
        for event in events {
            let mut cmd = eval(&script, Q_ROUTE);
            cmd.arg(&event.id)
                .arg(event.event_type.as_str())
                .arg(event.campaign_id.as_str())
                .arg(&event.body)
                .arg(event.created_at.timestamp_millis())
                .arg(retention_ms());
            pipe.add_command(cmd).ignore();
        }
        pipe.query_async::<()>(&mut self.conn())
            .await
            .map_err(unavailable)
    }

    async fn link_stats(&self, code: &ShortCode) -> Result<Stats, StoreError> {
        let h: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(format!("akti:{{q}}:stats:link:{code}"))
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok(stats_from_hash(&h))
    }

    async fn campaign_stats(&self, campaign: &CampaignId) -> Result<(u64, Stats), StoreError> {
        let (h, links): (HashMap<String, String>, u64) = redis::pipe()
            .hgetall(format!("akti:{{q}}:stats:campaign:{}", campaign.as_str()))
            .zcard(campaign_index(campaign))
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok((links, stats_from_hash(&h)))
    }
}
