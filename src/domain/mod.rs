//! The domain: every value the service deals in, and the decisions both stores take.
//!
//! Every value that crosses the HTTP boundary is parsed into one of these types once, at
//! the edge; the rest of the crate never re-checks them. Each type's `parse` is the single
//! place where its rule lives, and its error message is what the API shows the client.
//! [`rules`] holds the decisions (is a window open, what becomes of a delivery, which
//! message statuses act) as pure functions that both backends call.
//!
//! A leaf: nothing here uses another module of the crate.

pub mod analytics;
mod campaign;
mod click;
mod event;
mod ids;
mod link;
mod message;
mod page;
mod phone;
pub mod rules;
mod stats;
mod time;
mod url;
mod webhook;

pub use campaign::{CampaignPatch, CampaignState, Setting};
pub use click::{CampaignCount, ClickCounts, ClickOutcome, Count, Counted, LeadClick, LinkCount};
pub use event::{
    API_VERSION, ClickedLead, Event, EventType, link_clicked, link_delivered, links_sent,
};
/// The event bodies' parts, for the OpenAPI document's `webhooks`.
pub(crate) use event::{ClickedData, DeliveredData, Metadata as EventMetadata, SentData};
pub use ids::{
    CampaignId, EventId, ExternalLeadId, MessageId, ShortCode, SubscriptionId, random_bytes,
    random_id,
};
pub use link::{Device, Gone, Link, LinkPatch, NewLink, Routing, ShortUrls};
pub use message::{MAX_BODY_CHARS, Message, MessageLink, MessageStatus};
pub use page::{Page, Position};
pub use phone::Phone;
pub use stats::Stats;
pub use time::{format_time, from_millis, now_millis};
pub use url::{Destination, with_forwarded_query};
pub use webhook::{
    Attempt, DeliveryOutcome, DeliveryRecord, DeliveryStatus, DeliveryTask, Subscription,
    SubscriptionFilter, SubscriptionPatch,
};

/// Why a value was refused. `field` names the offending input, `message` says what the
/// rule is; both are safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidValue {
    pub field: &'static str,
    pub message: String,
}

impl InvalidValue {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}
