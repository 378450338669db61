//! The messages port: messages kept for their status reports.

use super::StoreError;
use crate::domain::{Event, Message, MessageId, MessageStatus, rules::MessageCounter};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// What became of a status report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusRecorded {
    /// First report of this status: counted, events queued.
    Recorded,
    /// Reported before: nothing done.
    Repeated,
    /// No such message (or it expired).
    UnknownMessage,
}

#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Stores `message` (kept until its `expires_at`) unless one with its id exists; then
    /// answers with that one, unchanged.
    async fn create_message(&self, message: &Message) -> Result<Option<Message>, StoreError>;

    /// `None` when unknown or expired.
    async fn get_message(&self, id: &MessageId) -> Result<Option<Message>, StoreError>;

    /// Records `status` of a message once: the first report of a status adds to `counter`
    /// (in its campaign's stats) and queues `events` atomically with it; a repeat does
    /// nothing ([`crate::domain::rules::first_report`] decides both). The first report
    /// also adds to the campaign's series in the bucket of `at`, and a first `delivered`
    /// marks the message's links delivered (a link clicked before gets its time to click).
    async fn record_message_status(
        &self,
        message: &Message,
        status: MessageStatus,
        at: DateTime<Utc>,
        counter: Option<MessageCounter>,
        events: &[Event],
    ) -> Result<StatusRecorded, StoreError>;
}
