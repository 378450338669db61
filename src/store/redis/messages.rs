//! Messages in Redis: `akti:{q}:message:<id>`, a hash kept for `AKTI_MESSAGE_TTL`, in the
//! `{q}` slot so that a status report, its counter and its events are one script.

use super::super::{MessageStore, StatusRecorded, StoreError};
use super::events::ENQUEUE_LUA;
use super::{LuaScript, RedisStore, eval, unavailable};
use crate::domain::{CampaignId, ExternalLeadId, Phone, from_millis};
use crate::events::Event;
use crate::messages::{Message, MessageId, MessageStatus};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::LazyLock;

fn message_key(id: &MessageId) -> String {
    format!("akti:{{q}}:message:{}", id.as_str())
}

/// Writes the message hash unless the id is taken. ARGV: ttl (ms), then field/value pairs.
const CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1";

/// Records a status once. KEYS[1] message. ARGV: status, time (ms), retention (ms), event
/// count, then id, type, body of each event. Answers -1 unknown, 0 repeated, 1 recorded.
const STATUS_BODY: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local status = ARGV[1]
if redis.call('HSETNX', KEYS[1], 's:' .. status, ARGV[2]) == 0 then return 0 end
local campaign = redis.call('HGET', KEYS[1], 'c')
local stats = Q .. 'stats:campaign:' .. campaign
if status == 'sent' then redis.call('HINCRBY', stats, 'messagesSent', 1) end
if status == 'delivered' then redis.call('HINCRBY', stats, 'messagesDelivered', 1) end
local retention, n = tonumber(ARGV[3]), tonumber(ARGV[4])
for i = 0, n - 1 do
  local base = 5 + i * 3
  enqueue(ARGV[base], ARGV[base + 1], campaign, ARGV[base + 2], tonumber(ARGV[2]), retention)
end
return 1";

static STATUS: LazyLock<LuaScript> =
    LazyLock::new(|| LuaScript::new(format!("{ENQUEUE_LUA}{STATUS_BODY}")));

fn message_from_hash(
    id: &MessageId,
    mut h: HashMap<String, String>,
) -> Result<Option<Message>, StoreError> {
    if h.is_empty() {
        return Ok(None);
    }
    let corrupt = |what: &str| StoreError::Corrupt(format!("message {}: {what}", id.as_str()));
    let external_lead_id = h.remove("x").map(ExternalLeadId::from_trusted);
    let mut take = |k: &str| h.remove(k).ok_or_else(|| corrupt(k));
    let millis = |s: String| {
        s.parse::<i64>()
            .map(from_millis)
            .map_err(|_| corrupt("time"))
    };
    Ok(Some(Message {
        id: id.clone(),
        campaign_id: CampaignId::from_trusted(take("c")?),
        phone: Phone::from_trusted(take("p")?),
        external_lead_id,
        original: take("o")?,
        body: take("b")?,
        links: serde_json::from_str(&take("l")?).map_err(|_| corrupt("links"))?,
        created_at: millis(take("at")?)?,
        expires_at: millis(take("exp")?)?,
    }))
}

#[async_trait]
impl MessageStore for RedisStore {
    async fn create_message(&self, message: &Message) -> Result<Option<Message>, StoreError> {
        let ttl = (message.expires_at - message.created_at)
            .num_milliseconds()
            .max(1);
        let mut cmd = eval(CREATE, &message_key(&message.id));
        cmd.arg(ttl)
            .arg("c")
            .arg(message.campaign_id.as_str())
            .arg("p")
            .arg(message.phone.as_str())
            .arg("o")
            .arg(&message.original)
            .arg("b")
            .arg(&message.body)
            .arg("l")
            .arg(serde_json::to_string(&message.links).unwrap_or_default())
            .arg("at")
            .arg(message.created_at.timestamp_millis())
            .arg("exp")
            .arg(message.expires_at.timestamp_millis());
        if let Some(lead) = &message.external_lead_id {
            cmd.arg("x").arg(lead.as_str());
        }
        let created: u8 = cmd
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        if created == 1 {
            return Ok(None);
        }
        self.get_message(&message.id).await
    }

    async fn get_message(&self, id: &MessageId) -> Result<Option<Message>, StoreError> {
        let h: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(message_key(id))
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        message_from_hash(id, h)
    }

    async fn record_message_status(
        &self,
        id: &MessageId,
        status: MessageStatus,
        at: DateTime<Utc>,
        events: &[Event],
    ) -> Result<StatusRecorded, StoreError> {
        let at = at.timestamp_millis();
        let mut cmd = STATUS.call(&message_key(id));
        cmd.arg(status.as_str())
            .arg(at)
            .arg(self.retention_ms)
            .arg(events.len());
        for event in events {
            cmd.arg(&event.id)
                .arg(event.event_type.as_str())
                .arg(&event.body);
        }
        let answer: i8 = self
            .query_scripted(&STATUS, redis::pipe().add_command(cmd))
            .await
            .map(|(a,): (i8,)| a)?;
        Ok(match answer {
            1 => StatusRecorded::Recorded,
            0 => StatusRecorded::Repeated,
            _ => StatusRecorded::UnknownMessage,
        })
    }
}
