//! Integration tests: the real app on `127.0.0.1:0`, real `redis-server`s on free ports,
//! and the real binary where a test is about the process itself.

mod helpers;

mod analytics;
mod binary;
mod cache;
mod campaign_controls;
mod campaigns;
mod clicks;
mod cluster;
mod connections;
mod dashboard;
mod durability;
mod leads;
mod links;
mod messages;
mod redirects;
mod resilience;
mod store_contract;
mod webhooks;
