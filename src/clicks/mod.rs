//! Clicks: who clicked ([`bots`]) and recording what they did ([`recorder`]).

pub mod bots;
pub mod recorder;
