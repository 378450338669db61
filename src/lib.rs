//! akti-link: short, per-lead tracked links for SMS campaigns.
//!
//! How a click flows:
//!
//! 1. [`http::public`] receives `GET /{code}` and asks the [`cache::LinkCache`] for the
//!    link; on a miss the cache reads the [`store`] (Redis or embedded SQLite).
//! 2. [`clicks::agents`] judges the visitor ([`clicks::bots`]) and its system. Bots, previews and links without a lead are
//!    only counted; a lead's human click goes to the [`clicks::recorder`], which opens the
//!    lead's dedup window and queues its [`events`] `lead.link_clicked` for every matching
//!    subscription in one atomic store step, batched with the clicks around it.
//! 3. The lead is redirected (`302`) once that is durable (or gets `404`/`410`).
//! 4. Every instance's [`dispatch`] leases due deliveries from the store, signs and sends
//!    them, and records the outcome (retries, `410`, the delivery log).
//!
//! The sender's side: [`messages`] puts the lead's short links into an SMS body and turns
//! `sent`/`delivered` reports (from the admin API or [`http::twilio`]) into
//! `lead.link_sent`/`lead.link_delivered`.
//!
//! Everything is managed through the admin API in [`http::admin`], with every input parsed
//! into the validated types of [`domain`] at the edge. [`config`] reads the layered
//! configuration and [`app`] wires everything together and owns shutdown.

pub mod app;
pub mod background;
pub mod cache;
pub mod clicks;
pub mod config;
pub mod dispatch;
pub mod domain;
pub mod http;
pub mod service;
pub mod sms;
pub mod store;
pub mod telemetry;
