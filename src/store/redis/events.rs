//! Clicks, events and counters in Redis: see the key layout in the parent module.

use super::super::{ClickCounts, ClickOutcome, ClickStore, LeadClick, Stats, StoreError};
use super::links::campaign_index;
use super::{LuaScript, RedisStore, unavailable};
use crate::domain::{CampaignId, ShortCode, from_millis};
use crate::events::Event;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::LazyLock;

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

/// Lead clicks, in order. ARGV: groups of eight: code, campaign, click time (ms), window
/// (ms), event id, event type, body, retention (ms). Answers one number per click: its
/// click time when it opened the window and queued the event, or minus the time the
/// window it fell in was opened. (The clicks' counters are added with the other counts,
/// off this path.)
///
/// The window is judged in click time, not arrival time, so that clicks buffered through
/// a store outage and written late are deduplicated as they happened. The window key holds
/// the opening click's time and event id: a click written again (after a timeout whose
/// write still ran) finds its own window and answers as it did the first time, without
/// queueing its event twice. The key lives one window from now, and at least
/// `REPLAY_HORIZON`, so that a late retry still finds it.
const LEAD_CLICK_BODY: &str = r"
local answers = {}
for i = 1, #ARGV, 8 do
  local code, campaign, at, window = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local event = ARGV[i + 4]
  local wkey = Q .. 'window:' .. code
  local held = redis.call('GET', wkey) or ''
  local opened, by = string.match(held, '^(%d+)|(.*)$')
  opened = tonumber(opened or held)
  if by == event then
    answers[#answers + 1] = at
  elseif opened and at < opened + window then
    answers[#answers + 1] = -opened
  else
    redis.call('SET', wkey, at .. '|' .. event, 'PX', math.max(window, $REPLAY_HORIZON))
    enqueue(event, ARGV[i + 5], campaign, ARGV[i + 6], at, tonumber(ARGV[i + 7]))
    answers[#answers + 1] = at
  end
end
return answers
";

/// How long a lead's window key outlives a short window: longer than any retry of a click
/// write takes to follow the write it repeats.
const REPLAY_HORIZON_MS: u64 = 60_000;

/// Lead clicks per call of the click script: a batch is a few calls with one reply
/// each, not a call and a two-element reply per click (the service's cost of a click that
/// emits fell from 44,600 to 37,500 instructions with this and the window-cache change),
/// and no call holds Redis for more than about a millisecond.
const CLICKS_PER_CALL: usize = 64;

/// Adds to many counter hashes in one call, once per call id. ARGV[1] names the call (its
/// batch id and place in the batch): a call whose name was seen in the last
/// `APPLIED_FOR_MS` adds nothing, so a write retried after a timeout is not counted twice.
/// ARGV[2] says how the rest is grouped:
/// - `f`: groups of six: `l` (a link's counters) or `c` (a campaign's), the code or
///   campaign id, human clicks, bot clicks, events, latest human click (ms or 0);
/// - `b`: pairs of a link's code and its bot clicks, for links with nothing else to add
///   (the most common counter by far: previews and scanners open every link of a campaign).
///
/// One call per [`COUNTS_PER_CALL`] counters rather than one command per counter: with
/// per-lead links nearly every click touches a different link, so a flush is as many
/// counters as clicks.
const ADD_COUNTS: &str = r"
if not redis.call('SET', '$APPLIED' .. ARGV[1], 1, 'NX', 'PX', $APPLIED_FOR_MS) then
  return 0
end
if ARGV[2] == 'b' then
  for i = 3, #ARGV, 2 do
    redis.call('HINCRBY', '$LINK_STATS' .. ARGV[i], 'botClicks', ARGV[i + 1])
  end
  return 1
end
local prefix = {l = '$LINK_STATS', c = '$CAMPAIGN_STATS'}
for i = 3, #ARGV, 6 do
  local key = prefix[ARGV[i]] .. ARGV[i + 1]
  local clicks, bots, events = tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])
  if clicks > 0 then redis.call('HINCRBY', key, 'clicks', clicks) end
  if bots > 0 then redis.call('HINCRBY', key, 'botClicks', bots) end
  if events > 0 then redis.call('HINCRBY', key, 'clickEvents', events) end
  local at = tonumber(ARGV[i + 5])
  if at > 0 and at > tonumber(redis.call('HGET', key, 'lastClickedAt') or '0') then
    redis.call('HSET', key, 'lastClickedAt', at)
  end
end
return 1
";

/// How long a counts call is remembered as applied: far longer than a retry can follow it.
const APPLIED_FOR_MS: u64 = 10 * 60_000;

/// Counters per call of [`ADD_COUNTS`]: small enough that one call holds Redis for about
/// a millisecond, large enough that a flush is a handful of calls.
const COUNTS_PER_CALL: usize = 500;

static LEAD_CLICK: LazyLock<LuaScript> = LazyLock::new(|| {
    LuaScript::new(format!(
        "{ENQUEUE_LUA}{}",
        LEAD_CLICK_BODY.replace("$REPLAY_HORIZON", &REPLAY_HORIZON_MS.to_string())
    ))
});
static ENQUEUE: LazyLock<LuaScript> =
    LazyLock::new(|| LuaScript::new(format!("{ENQUEUE_LUA}{ENQUEUE_BODY}")));
static ADD: LazyLock<LuaScript> = LazyLock::new(|| {
    LuaScript::new(
        ADD_COUNTS
            .replace("$APPLIED_FOR_MS", &APPLIED_FOR_MS.to_string())
            .replace("$APPLIED", APPLIED)
            .replace("$LINK_STATS", LINK_STATS)
            .replace("$CAMPAIGN_STATS", CAMPAIGN_STATS),
    )
});

/// ARGV: event id, type, campaign, body, created (ms), retention (ms).
const ENQUEUE_BODY: &str = r"
enqueue(ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]))
return 1
";

const LINK_STATS: &str = "akti:{q}:stats:link:";
const APPLIED: &str = "akti:{q}:applied:";
const CAMPAIGN_STATS: &str = "akti:{q}:stats:campaign:";

fn stats_key(prefix: &str, id: &str) -> String {
    format!("{prefix}{id}")
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
    async fn record_lead_clicks(
        &self,
        clicks: &[LeadClick],
    ) -> Result<Vec<ClickOutcome>, StoreError> {
        if clicks.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for chunk in clicks.chunks(CLICKS_PER_CALL) {
            let mut cmd = LEAD_CLICK.call(Q_ROUTE);
            for click in chunk {
                cmd.arg(click.code.as_str())
                    .arg(click.campaign_id.as_str())
                    .arg(click.at.timestamp_millis())
                    .arg(click.window.as_millis() as u64)
                    .arg(&click.event.id)
                    .arg(click.event.event_type.as_str())
                    .arg(&click.event.body)
                    .arg(self.retention_ms);
            }
            pipe.add_command(cmd);
        }
        let answers: Vec<Vec<i64>> = self.query_scripted(&LEAD_CLICK, &pipe).await?;
        let answers: Vec<i64> = answers.into_iter().flatten().collect();
        if answers.len() != clicks.len() {
            return Err(StoreError::Corrupt(format!(
                "the click script answered {} times for {} clicks",
                answers.len(),
                clicks.len()
            )));
        }
        Ok(answers
            .into_iter()
            .map(|answer| match answer {
                opened if opened < 0 => ClickOutcome::Deduplicated {
                    window_opened_at: from_millis(-opened),
                },
                _ => ClickOutcome::Emitted,
            })
            .collect())
    }

    async fn add_click_counts(&self, batch: &str, counts: &ClickCounts) -> Result<(), StoreError> {
        if counts.is_empty() {
            return Ok(());
        }
        let counters = (counts.links.iter())
            .map(|(code, count)| ("l", code.as_str(), count))
            .chain(
                (counts.campaigns.iter()).map(|(campaign, count)| ("c", campaign.as_str(), count)),
            );
        let (bots_only, full): (Vec<_>, Vec<_>) = counters.partition(|(kind, _, count)| {
            *kind == "l" && count.clicks == 0 && count.click_events == 0
        });
        // The same counts always make the same calls (a map unchanged iterates in the same
        // order), so a retried batch repeats its call names exactly.
        let mut pipe = redis::pipe();
        let mut call = 0;
        let mut named = |kind: &str| {
            let mut cmd = ADD.call_without_keys();
            cmd.arg(format!("{batch}:{call}")).arg(kind);
            call += 1;
            cmd
        };
        for chunk in full.chunks(COUNTS_PER_CALL) {
            let mut cmd = named("f");
            for (kind, id, count) in chunk {
                cmd.arg(*kind)
                    .arg(*id)
                    .arg(count.clicks)
                    .arg(count.bot_clicks)
                    .arg(count.click_events)
                    .arg(count.last_clicked_at.unwrap_or(0));
            }
            pipe.add_command(cmd).ignore();
        }
        for chunk in bots_only.chunks(COUNTS_PER_CALL) {
            let mut cmd = named("b");
            for (_, code, count) in chunk {
                cmd.arg(*code).arg(count.bot_clicks);
            }
            pipe.add_command(cmd).ignore();
        }
        self.query_scripted(&ADD, &pipe).await
    }

    async fn enqueue_events(&self, events: &[Event]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for event in events {
            let mut cmd = ENQUEUE.call(Q_ROUTE);
            cmd.arg(&event.id)
                .arg(event.event_type.as_str())
                .arg(event.campaign_id.as_str())
                .arg(&event.body)
                .arg(event.created_at.timestamp_millis())
                .arg(self.retention_ms);
            pipe.add_command(cmd).ignore();
        }
        self.query_scripted(&ENQUEUE, &pipe).await
    }

    async fn link_stats(&self, code: &ShortCode) -> Result<Stats, StoreError> {
        let h: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(stats_key(LINK_STATS, code.as_str()))
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok(stats_from_hash(&h))
    }

    async fn campaign_stats(&self, campaign: &CampaignId) -> Result<(u64, Stats), StoreError> {
        let (h, links): (HashMap<String, String>, u64) = redis::pipe()
            .hgetall(stats_key(CAMPAIGN_STATS, campaign.as_str()))
            .zcard(campaign_index(campaign))
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok((links, stats_from_hash(&h)))
    }
}
