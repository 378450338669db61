//! Messages: rewriting an SMS body with the lead's short links, and the sender's status
//! reports turned into `lead.link_sent` and `lead.link_delivered`.

use crate::domain::{
    CampaignId, ExternalLeadId, Message, MessageId, MessageLink, MessageStatus, NewLink, Phone,
    Routing, ShortUrls, now_millis, rules,
};
use crate::sms;
use crate::store::{LinkStore, MessageStore, StatusRecorded, StoreError};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

/// A message to rewrite, validated.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub campaign_id: CampaignId,
    pub phone: Phone,
    pub external_lead_id: Option<ExternalLeadId>,
    /// 1 to [`crate::domain::MAX_BODY_CHARS`] characters.
    pub body: String,
    /// The sender's id; generated when absent.
    pub id: Option<MessageId>,
}

/// What a creation came to.
#[derive(Debug)]
pub enum Compose {
    Created(Message),
    /// The same message was created before (a retried call): that one.
    Existing(Message),
    /// The id is taken by a different message.
    Conflict,
}

pub struct Messages {
    links: Arc<dyn LinkStore>,
    store: Arc<dyn MessageStore>,
    short_urls: ShortUrls,
    code_length: usize,
    ttl: Duration,
}

impl Messages {
    pub fn new(
        links: Arc<dyn LinkStore>,
        store: Arc<dyn MessageStore>,
        short_urls: ShortUrls,
        code_length: usize,
        ttl: Duration,
    ) -> Self {
        Self {
            links,
            store,
            short_urls,
            code_length,
            ttl,
        }
    }

    /// Every URL of the body becomes the lead's short link for it (created as a link would
    /// be, idempotently), and the message is kept for its status reports.
    pub async fn create(&self, new: NewMessage) -> Result<Compose, StoreError> {
        let id = new.id.clone().unwrap_or_else(MessageId::generate);
        if let Some(existing) = self.store.get_message(&id).await? {
            return Ok(same_or_conflict(existing, &new));
        }
        let found = sms::find_urls(&new.body, self.short_urls.base());
        let wanted = (found.iter())
            .map(|f| NewLink {
                campaign_id: new.campaign_id.clone(),
                phone: Some(new.phone.clone()),
                external_lead_id: new.external_lead_id.clone(),
                url: f.destination.clone(),
                code: None,
                expires_at: None,
                routing: Routing::default(),
            })
            .collect();
        let created = self.links.create_links(wanted, self.code_length).await?;
        let short: Vec<String> = (created.iter())
            .map(|c| self.short_urls.of(c.link.code.as_str()))
            .collect();
        let mut links: Vec<MessageLink> = Vec::new();
        for (c, short_url) in created.iter().zip(&short) {
            if !links.iter().any(|l| l.short_url == *short_url) {
                links.push(MessageLink {
                    url: c.link.url.as_str().to_owned(),
                    short_url: short_url.clone(),
                    code: c.link.code.to_string(),
                });
            }
        }
        let now = now_millis();
        let message = Message {
            id,
            campaign_id: new.campaign_id.clone(),
            phone: new.phone.clone(),
            external_lead_id: new.external_lead_id.clone(),
            body: sms::rewrite(&new.body, &found, &short),
            original: new.body.clone(),
            links,
            created_at: now,
            expires_at: now + chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::MAX),
        };
        Ok(match self.store.create_message(&message).await? {
            None => Compose::Created(message),
            // A concurrent call with the same id got there first.
            Some(existing) => same_or_conflict(existing, &new),
        })
    }

    /// Records a status report (from the API or a provider's callback) as
    /// [`rules::first_report`] says. Answers what happened and how many events were queued.
    pub async fn report(
        &self,
        id: &MessageId,
        status: MessageStatus,
        at: Option<DateTime<Utc>>,
    ) -> Result<(StatusRecorded, usize), StoreError> {
        let Some(message) = self.store.get_message(id).await? else {
            return Ok((StatusRecorded::UnknownMessage, 0));
        };
        let at = at.unwrap_or_else(now_millis);
        let (counter, events) = rules::first_report(&message, status, at);
        let recorded = (self.store)
            .record_message_status(&message, status, at, counter, &events)
            .await?;
        let queued = if recorded == StatusRecorded::Recorded {
            events.len()
        } else {
            0
        };
        Ok((recorded, queued))
    }
}

fn same_or_conflict(existing: Message, new: &NewMessage) -> Compose {
    let same = existing.campaign_id == new.campaign_id
        && existing.phone == new.phone
        && existing.external_lead_id == new.external_lead_id
        && existing.original == new.body;
    if same {
        Compose::Existing(existing)
    } else {
        Compose::Conflict
    }
}
