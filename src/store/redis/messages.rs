//! Messages in Redis: a hash each, in the `{q}` slot so that a status report, its counter
//! and its events are one script; kept for `AKTI_MESSAGE_TTL`.

use super::scripts::SCRIPTS;
use super::{RedisStore, keys};
use crate::domain::{
    CampaignId, Event, ExternalLeadId, Message, MessageId, MessageStatus, Phone, from_millis,
    rules::MessageCounter,
};
use crate::store::{MessageStore, StatusRecorded, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

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
        let links = serde_json::to_string(&message.links).map_err(StoreError::bug)?;
        let mut cmd = SCRIPTS.create_message.call(&[&keys::message(&message.id)]);
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
            .arg(links)
            .arg("at")
            .arg(message.created_at.timestamp_millis())
            .arg("exp")
            .arg(message.expires_at.timestamp_millis());
        if let Some(lead) = &message.external_lead_id {
            cmd.arg("x").arg(lead.as_str());
        }
        let created: u8 = self.run_one(cmd).await?;
        if created == 1 {
            return Ok(None);
        }
        self.get_message(&message.id).await
    }

    async fn get_message(&self, id: &MessageId) -> Result<Option<Message>, StoreError> {
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(keys::message(id));
        let h: HashMap<String, String> = self.query(&cmd).await?;
        message_from_hash(id, h)
    }

    async fn record_message_status(
        &self,
        id: &MessageId,
        status: MessageStatus,
        at: DateTime<Utc>,
        counter: Option<MessageCounter>,
        events: &[Event],
    ) -> Result<StatusRecorded, StoreError> {
        let mut cmd = SCRIPTS.message_status.call(&[&keys::message(id)]);
        cmd.arg(&keys::FAN_OUT[..])
            .arg(keys::STATS[1])
            .arg(status.as_str())
            .arg(at.timestamp_millis())
            .arg(self.retention_ms)
            .arg(counter.map_or("", MessageCounter::name));
        for event in events {
            cmd.arg(event.id.as_str())
                .arg(event.event_type.as_str())
                .arg(&event.body);
        }
        Ok(match self.run_one::<i8>(cmd).await? {
            1 => StatusRecorded::Recorded,
            0 => StatusRecorded::Repeated,
            _ => StatusRecorded::UnknownMessage,
        })
    }
}
