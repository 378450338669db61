//! Clicks: who clicked ([`bots`], [`agents`]), and what a click records
//! ([`Clicks::record`]) through the [`recorder`].

pub mod agents;
pub mod bots;
mod counts;
mod lead_writes;
pub mod recorder;

use crate::cache::CachedLink;
use crate::domain::analytics::Os;
use crate::domain::{Counted, LeadClick, ShortCode, ShortUrls, link_clicked};
use agents::Agent;
use bots::Visitor;
use chrono::{DateTime, Utc};
use recorder::ClickRecorder;

/// Records clicks of links as the redirect path sees them.
#[derive(Clone)]
pub struct Clicks {
    recorder: ClickRecorder,
    short_urls: ShortUrls,
}

impl Clicks {
    pub fn new(recorder: ClickRecorder, short_urls: ShortUrls) -> Self {
        Self {
            recorder,
            short_urls,
        }
    }

    /// Records a click by `agent`. A lead's human click returns
    /// only once its event is durable (or buffered through a store outage), unless this
    /// instance knows the lead's window is open; everything else is counted without
    /// waiting. Bots and previews never touch the dedup window.
    pub async fn record(&self, link: &CachedLink, agent: Agent, at: DateTime<Utc>) {
        let counted = match agent.visitor {
            Visitor::Bot => Counted::Bot,
            Visitor::Human
                if link.phone().is_none() || link.in_open_window(at, self.recorder.window()) =>
            {
                Counted::Human
            }
            Visitor::Human => {
                let short_url = self.short_urls.of(link.code());
                if let Some(lead) = link.clicked_lead(&short_url) {
                    let click = LeadClick {
                        code: ShortCode::from_trusted(link.code()),
                        campaign_id: link.campaign_id().clone(),
                        at,
                        os: agent.os,
                        event: link_clicked(&lead, at),
                    };
                    if let Some(opened) = self.recorder.record_lead(click).await {
                        link.window_opened(opened);
                    }
                }
                return;
            }
        };
        let os = match counted {
            Counted::Bot => Os::Other,
            Counted::Human | Counted::HumanWithEvent => agent.os,
        };
        self.recorder
            .count(link.code(), link.campaign_id(), counted, os, at);
    }
}
