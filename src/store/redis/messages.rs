//! Messages in Redis: a hash each, in the partition of its id, where a status report, its
//! campaign counter and its events are one script; kept for `AKTI_MESSAGE_TTL`.

use super::RedisStore;
use super::keys::{self, Partition};
use super::scripts::SCRIPTS;
use crate::domain::analytics::SeriesDelta;
use crate::domain::{
    CampaignId, Event, ExternalLeadId, Message, MessageId, MessageStatus, Phone, from_millis,
    random_id, rules::MessageCounter,
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

impl RedisStore {
    /// Records on each link of a delivered message when it was delivered, the first
    /// report's time only, and answers the first clicks of the links clicked before (the
    /// links are in their own partitions, not the message's: a separate step).
    async fn mark_delivered(&self, message: &Message, at: i64) -> Result<Vec<i64>, StoreError> {
        let marks = (message.links.iter())
            .map(|link| {
                let mut mark = SCRIPTS
                    .mark_delivered
                    .call(&[&Partition::of(&link.code).link_stats(&link.code)]);
                mark.arg(at);
                mark
            })
            .collect();
        let clicked: Vec<i64> = self.spread(marks).await?;
        Ok(clicked.into_iter().filter(|at| *at > 0).collect())
    }
}

#[async_trait]
impl MessageStore for RedisStore {
    async fn create_message(&self, message: &Message) -> Result<Option<Message>, StoreError> {
        let ttl = (message.expires_at - message.created_at)
            .num_milliseconds()
            .max(1);
        let links = serde_json::to_string(&message.links).map_err(StoreError::bug)?;
        let mut cmd = SCRIPTS
            .create_message
            .call(&[&Partition::of(message.id.as_str()).message(&message.id)]);
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
            // Found again when the lead is erased; kept as long as its last message.
            let mut index = (SCRIPTS.index_message).call(&[&keys::phone_messages(&message.phone)]);
            index.arg(message.id.as_str()).arg(ttl);
            self.run_one::<()>(index).await?;
            return Ok(None);
        }
        self.get_message(&message.id).await
    }

    async fn get_message(&self, id: &MessageId) -> Result<Option<Message>, StoreError> {
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(Partition::of(id.as_str()).message(id));
        let h: HashMap<String, String> = self.query(&cmd).await?;
        message_from_hash(id, h)
    }

    async fn record_message_status(
        &self,
        message: &Message,
        status: MessageStatus,
        at: DateTime<Utc>,
        counter: Option<MessageCounter>,
        events: &[Event],
    ) -> Result<StatusRecorded, StoreError> {
        let id = &message.id;
        let partition = Partition::of(id.as_str());
        let [_, campaign_stats] = partition.stats();
        let mut cmd = SCRIPTS.message_status.call(&[&partition.message(id)]);
        cmd.arg(&partition.fan_out()[..])
            .arg(campaign_stats)
            .arg(status.as_str())
            .arg(at.timestamp_millis())
            .arg(self.retention_ms)
            .arg(counter.map_or("", MessageCounter::name));
        for event in events {
            cmd.arg(event.id.as_str())
                .arg(event.event_type.as_str())
                .arg(&event.body);
        }
        let answer = self.run_one::<i8>(cmd).await?;
        if answer == 1 && !events.is_empty() {
            self.queued.notify_waiters();
        }
        if answer == 1 {
            // The series after the status: a report is not retried once recorded, so the
            // series write has a name of its own (which makes a resent pipeline harmless).
            let (campaign, at) = (&message.campaign_id, at.timestamp_millis());
            let mut series = SeriesDelta::default();
            if let Some(counter) = counter {
                series.message(campaign, counter, at);
            }
            if status == MessageStatus::Delivered {
                for clicked_at in self.mark_delivered(message, at).await? {
                    series.delivered_after_click(campaign, at, clicked_at);
                }
            }
            self.add_series(&random_id("sts_", 20), &series).await?;
        }
        Ok(match answer {
            1 => StatusRecorded::Recorded,
            0 => StatusRecorded::Repeated,
            _ => StatusRecorded::UnknownMessage,
        })
    }
}
