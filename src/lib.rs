//! akti-link: short, per-lead tracked links for SMS campaigns.
//!
//! How a click flows:
//!
//! 1. [`http::public`] receives `GET /{code}` and asks the [`cache::LinkCache`] for the
//!    link; on a miss the cache reads the [`store`] (Redis or embedded SQLite).
//! 2. The lead is redirected (`302`) to the link's destination, or gets `404`/`410`.
//!
//! Links are managed through the admin API in [`http::admin`], with every input parsed
//! into the validated types of [`domain`] at the edge. [`config`] reads the layered
//! configuration and [`app`] wires everything together and owns shutdown.

pub mod app;
pub mod cache;
pub mod clicks;
pub mod config;
pub mod dispatch;
pub mod domain;
pub mod events;
pub mod http;
pub mod messages;
pub mod store;
pub mod telemetry;
