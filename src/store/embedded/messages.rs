//! Messages in SQLite: see the schema in the parent module.

use super::super::{MessageStore, StatusRecorded, StoreError};
use super::events::enqueue;
use super::webhooks::load_subscriptions;
use super::{EmbeddedStore, unavailable};
use crate::domain::{CampaignId, ExternalLeadId, Phone, from_millis, now_millis};
use crate::events::Event;
use crate::messages::{Message, MessageId, MessageStatus};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

fn find(conn: &Connection, id: &MessageId) -> Result<Option<Message>, StoreError> {
    conn.prepare_cached(
        "SELECT campaign_id, phone, external_lead_id, original, body, links, created_at, \
         expires_at FROM messages WHERE id = ?1 AND expires_at > ?2",
    )
    .and_then(|mut s| {
        s.query_row(params![id.as_str(), now_millis().timestamp_millis()], |r| {
            Ok(Message {
                id: id.clone(),
                campaign_id: CampaignId::from_trusted(r.get(0)?),
                phone: Phone::from_trusted(r.get(1)?),
                external_lead_id: r
                    .get::<_, Option<String>>(2)?
                    .map(ExternalLeadId::from_trusted),
                original: r.get(3)?,
                body: r.get(4)?,
                links: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or_default(),
                created_at: from_millis(r.get(6)?),
                expires_at: from_millis(r.get(7)?),
            })
        })
        .optional()
    })
    .map_err(unavailable)
}

#[async_trait]
impl MessageStore for EmbeddedStore {
    async fn create_message(&self, message: &Message) -> Result<Option<Message>, StoreError> {
        let message = message.clone();
        self.write(move |conn| {
            if let Some(existing) = find(conn, &message.id)? {
                return Ok(Some(existing));
            }
            // An expired message with this id may linger until the sweep: replace it.
            conn.execute("DELETE FROM messages WHERE id = ?1", [message.id.as_str()])
                .and_then(|_| {
                    conn.execute(
                        "DELETE FROM message_statuses WHERE message_id = ?1",
                        [message.id.as_str()],
                    )
                })
                .and_then(|_| {
                    conn.execute(
                        "INSERT INTO messages (id, campaign_id, phone, external_lead_id, original, \
                         body, links, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                        params![
                            message.id.as_str(),
                            message.campaign_id.as_str(),
                            message.phone.as_str(),
                            message.external_lead_id.as_ref().map(ExternalLeadId::as_str),
                            message.original,
                            message.body,
                            serde_json::to_string(&message.links).unwrap_or_default(),
                            message.created_at.timestamp_millis(),
                            message.expires_at.timestamp_millis(),
                        ],
                    )
                })
                .map_err(unavailable)?;
            Ok(None)
        })
        .await
    }

    async fn get_message(&self, id: &MessageId) -> Result<Option<Message>, StoreError> {
        let id = id.clone();
        self.read(move |conn| find(conn, &id)).await
    }

    async fn record_message_status(
        &self,
        id: &MessageId,
        status: MessageStatus,
        at: DateTime<Utc>,
        events: &[Event],
    ) -> Result<StatusRecorded, StoreError> {
        let (id, events) = (id.clone(), events.to_vec());
        let at = at.timestamp_millis();
        let recorded = self
            .write(move |conn| {
                let Some(message) = find(conn, &id)? else {
                    return Ok(StatusRecorded::UnknownMessage);
                };
                let first = conn
                    .execute(
                        "INSERT OR IGNORE INTO message_statuses (message_id, status, reported_at) \
                         VALUES (?1, ?2, ?3)",
                        params![id.as_str(), status.as_str(), at],
                    )
                    .map_err(unavailable)?
                    == 1;
                if !first {
                    return Ok(StatusRecorded::Repeated);
                }
                let column = match status {
                    MessageStatus::Sent => Some("messages_sent"),
                    MessageStatus::Delivered => Some("messages_delivered"),
                    _ => None,
                };
                if let Some(column) = column {
                    conn.execute(
                        &format!(
                            "INSERT INTO campaign_stats (campaign_id, {column}) VALUES (?1, 1) \
                             ON CONFLICT (campaign_id) DO UPDATE SET {column} = {column} + 1"
                        ),
                        [message.campaign_id.as_str()],
                    )
                    .map_err(unavailable)?;
                }
                let subs = load_subscriptions(conn)?;
                for event in &events {
                    enqueue(conn, event, &subs).map_err(unavailable)?;
                }
                Ok(StatusRecorded::Recorded)
            })
            .await?;
        if recorded == StatusRecorded::Recorded {
            self.due.notify_one();
        }
        Ok(recorded)
    }
}
