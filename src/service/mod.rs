//! The use cases: what the API does, each in one place, calling the store's ports, the
//! redirect cache and the change feed. Handlers parse a request, call one of these and
//! answer; nothing here knows HTTP.

mod campaigns;
mod links;
mod messages;
mod webhooks;

pub use campaigns::Campaigns;
pub use links::Links;
pub use messages::{Compose, Messages, NewMessage};
pub use webhooks::{NewSubscription, SubscribeError, SubscriptionChange, Webhooks};
