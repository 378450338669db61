//! Messages in SQLite, kept until `expires_at` for late status reports.

use super::outbox::enqueue;
use super::series::add_series;
use super::subscriptions::enabled_subscriptions;
use super::{EmbeddedStore, corrupt, sqlite};
use crate::domain::analytics::SeriesDelta;
use crate::domain::{
    CampaignId, Event, ExternalLeadId, Message, MessageId, MessageStatus, Phone, from_millis,
    now_millis, rules::MessageCounter,
};
use crate::store::{MessageStore, StatusRecorded, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

fn find(conn: &Connection, id: &MessageId) -> Result<Option<Message>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT campaign_id, phone, external_lead_id, original, body, links, created_at, \
             expires_at FROM messages WHERE id = ?1 AND expires_at > ?2",
        )
        .map_err(sqlite)?;
    let mut rows = stmt
        .query(params![id.as_str(), now_millis().timestamp_millis()])
        .map_err(sqlite)?;
    let Some(r) = rows.next().map_err(sqlite)? else {
        return Ok(None);
    };
    let links: String = r.get(5).map_err(sqlite)?;
    Ok(Some(Message {
        id: id.clone(),
        campaign_id: CampaignId::from_trusted(r.get(0).map_err(sqlite)?),
        phone: Phone::from_trusted(r.get(1).map_err(sqlite)?),
        external_lead_id: r
            .get::<_, Option<String>>(2)
            .map_err(sqlite)?
            .map(ExternalLeadId::from_trusted),
        original: r.get(3).map_err(sqlite)?,
        body: r.get(4).map_err(sqlite)?,
        links: serde_json::from_str(&links)
            .map_err(|e| corrupt(format!("message {}: links: {e}", id.as_str())))?,
        created_at: from_millis(r.get(6).map_err(sqlite)?),
        expires_at: from_millis(r.get(7).map_err(sqlite)?),
    }))
}

fn insert(conn: &Connection, message: &Message) -> Result<(), StoreError> {
    let links = serde_json::to_string(&message.links).map_err(StoreError::bug)?;
    // An expired message with this id may linger until the sweep: replace it.
    let id = message.id.as_str();
    conn.execute("DELETE FROM messages WHERE id = ?1", [id])
        .map_err(sqlite)?;
    conn.execute("DELETE FROM message_statuses WHERE message_id = ?1", [id])
        .map_err(sqlite)?;
    conn.execute(
        "INSERT INTO messages (id, campaign_id, phone, external_lead_id, original, body, links, \
         created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            id,
            message.campaign_id.as_str(),
            message.phone.as_str(),
            message
                .external_lead_id
                .as_ref()
                .map(ExternalLeadId::as_str),
            message.original,
            message.body,
            links,
            message.created_at.timestamp_millis(),
            message.expires_at.timestamp_millis(),
        ],
    )
    .map(drop)
    .map_err(sqlite)
}

fn counter_column(counter: MessageCounter) -> &'static str {
    match counter {
        MessageCounter::Sent => "messages_sent",
        MessageCounter::Delivered => "messages_delivered",
    }
}

#[async_trait]
impl MessageStore for EmbeddedStore {
    async fn create_message(&self, message: &Message) -> Result<Option<Message>, StoreError> {
        let message = message.clone();
        self.write(move |conn| match find(conn, &message.id)? {
            Some(existing) => Ok(Some(existing)),
            None => insert(conn, &message).map(|()| None),
        })
        .await
    }

    async fn get_message(&self, id: &MessageId) -> Result<Option<Message>, StoreError> {
        let id = id.clone();
        self.read(move |conn| find(conn, &id)).await
    }

    async fn record_message_status(
        &self,
        message: &Message,
        status: MessageStatus,
        at: DateTime<Utc>,
        counter: Option<MessageCounter>,
        events: &[Event],
    ) -> Result<StatusRecorded, StoreError> {
        let (id, events) = (message.id.clone(), events.to_vec());
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
                    .map_err(sqlite)?
                    == 1;
                if !first {
                    return Ok(StatusRecorded::Repeated);
                }
                if let Some(column) = counter.map(counter_column) {
                    conn.execute(
                        &format!(
                            "INSERT INTO campaign_stats (campaign_id, {column}) VALUES (?1, 1) \
                             ON CONFLICT (campaign_id) DO UPDATE SET {column} = {column} + 1"
                        ),
                        [message.campaign_id.as_str()],
                    )
                    .map_err(sqlite)?;
                }
                let mut series = SeriesDelta::default();
                if let Some(counter) = counter {
                    series.message(&message.campaign_id, counter, at);
                }
                if status == MessageStatus::Delivered {
                    for link in &message.links {
                        let (first, delivered): (Option<i64>, Option<i64>) = conn
                            .prepare_cached(
                                "SELECT first_clicked_at, delivered_at FROM link_stats WHERE code = ?1",
                            )
                            .and_then(|mut s| {
                                s.query_row([&link.code], |r| Ok((r.get(0)?, r.get(1)?)))
                                    .optional()
                            })
                            .map_err(sqlite)?
                            .unwrap_or_default();
                        if let (Some(clicked_at), None) = (first, delivered) {
                            series.delivered_after_click(&message.campaign_id, at, clicked_at);
                        }
                        conn.prepare_cached(
                            "INSERT INTO link_stats (code, delivered_at) VALUES (?1, ?2) \
                             ON CONFLICT (code) DO UPDATE SET \
                             delivered_at = ifnull(delivered_at, ?2)",
                        )
                        .and_then(|mut s| s.execute(params![link.code, at]))
                        .map_err(sqlite)?;
                    }
                }
                add_series(conn, &series)?;
                let subs = enabled_subscriptions(conn)?;
                for event in &events {
                    enqueue(conn, event, &subs)?;
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
