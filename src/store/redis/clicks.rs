//! Clicks, counts and counters in Redis.

use super::scripts::SCRIPTS;
use super::{RedisStore, keys};
use crate::domain::{
    CampaignId, ClickCounts, ClickOutcome, Count, LeadClick, ShortCode, Stats, from_millis,
};
use crate::store::{CampaignTotals, ClickStore, StoreError};
use async_trait::async_trait;
use std::collections::HashMap;
use std::time::Duration;

/// Lead clicks per call of the click script: a batch is a few calls with one reply each,
/// and no call holds Redis for more than about a millisecond.
const CLICKS_PER_CALL: usize = 64;
/// Counters per call of the counts script, for the same reason.
const COUNTS_PER_CALL: usize = 500;
/// How long a window key outlives a short window: longer than any retry of a click write
/// takes to follow the write it repeats.
const WINDOW_KEPT_MS: u64 = 60_000;
/// How long a counts call is remembered as applied: far longer than a retry can follow it.
const APPLIED_FOR_MS: u64 = 10 * 60_000;

/// The counters hash of a link or a campaign. A counter that is absent is 0; one that is
/// not a number was not written by us.
fn stats_from_hash(what: &str, h: &HashMap<String, String>) -> Result<Stats, StoreError> {
    let n = |k: &str| -> Result<u64, StoreError> {
        h.get(k).map_or(Ok(0), |v| {
            v.parse()
                .map_err(|_| StoreError::Corrupt(format!("{what}: {k} is {v:?}")))
        })
    };
    let last = match h.get("lastClickedAt") {
        None => None,
        Some(v) => Some(from_millis(v.parse().map_err(|_| {
            StoreError::Corrupt(format!("{what}: lastClickedAt is {v:?}"))
        })?)),
    };
    Ok(Stats {
        clicks: n("clicks")?,
        click_events: n("clickEvents")?,
        bot_clicks: n("botClicks")?,
        last_clicked_at: last,
        messages_sent: n("messagesSent")?,
        messages_delivered: n("messagesDelivered")?,
    })
}

#[async_trait]
impl ClickStore for RedisStore {
    async fn record_lead_clicks(
        &self,
        clicks: &[LeadClick],
        window: Duration,
    ) -> Result<Vec<ClickOutcome>, StoreError> {
        if clicks.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for chunk in clicks.chunks(CLICKS_PER_CALL) {
            let mut cmd = SCRIPTS.lead_clicks.call(&[keys::READY]);
            cmd.arg(&keys::FAN_OUT[..])
                .arg(keys::WINDOWS)
                .arg(self.retention_ms)
                .arg(window.as_millis() as u64)
                .arg(WINDOW_KEPT_MS);
            for click in chunk {
                cmd.arg(click.code.as_str())
                    .arg(click.campaign_id.as_str())
                    .arg(click.at.timestamp_millis())
                    .arg(click.event.id.as_str())
                    .arg(click.event.event_type.as_str())
                    .arg(&click.event.body);
            }
            pipe.add_command(cmd);
        }
        let answers: Vec<Vec<i64>> = self.run(&pipe).await?;
        let answers: Vec<i64> = answers.into_iter().flatten().collect();
        if answers.len() != clicks.len() {
            return Err(StoreError::Corrupt(format!(
                "the click script answered {} times for {} clicks",
                answers.len(),
                clicks.len()
            )));
        }
        Ok(answers
            .into_iter()
            .map(|answer| match answer {
                opened if opened < 0 => ClickOutcome::Deduplicated {
                    window_opened_at: from_millis(-opened),
                },
                _ => ClickOutcome::Emitted,
            })
            .collect())
    }

    async fn add_click_counts(&self, batch: &str, counts: &ClickCounts) -> Result<(), StoreError> {
        if counts.is_empty() {
            return Ok(());
        }
        let counters = (counts.links.iter())
            .map(|(code, count)| ("l", code.as_str(), count))
            .chain((counts.campaigns.iter()).map(|(c, count)| ("c", c.as_str(), count)));
        let (bots_only, full): (Vec<_>, Vec<_>) = counters.partition(|(kind, _, count)| {
            *kind == "l" && count.clicks == 0 && count.click_events == 0
        });
        // The same counts always make the same calls (a map unchanged iterates in the same
        // order), so a retried batch repeats its call names exactly.
        let mut pipe = redis::pipe();
        let mut calls = 0;
        let mut call = |grouping: &str| {
            let mut cmd = SCRIPTS.add_counts.call(&[]);
            cmd.arg(keys::applied(batch, calls))
                .arg(APPLIED_FOR_MS)
                .arg(&keys::STATS[..])
                .arg(grouping);
            calls += 1;
            cmd
        };
        for chunk in full.chunks(COUNTS_PER_CALL) {
            let mut cmd = call("f");
            for (kind, id, count) in chunk {
                add_full(&mut cmd, kind, id, count);
            }
            pipe.add_command(cmd).ignore();
        }
        for chunk in bots_only.chunks(COUNTS_PER_CALL) {
            let mut cmd = call("b");
            for (_, code, count) in chunk {
                cmd.arg(*code).arg(count.bot_clicks);
            }
            pipe.add_command(cmd).ignore();
        }
        self.run(&pipe).await
    }

    async fn link_stats(&self, code: &ShortCode) -> Result<Stats, StoreError> {
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(keys::link_stats(code.as_str()));
        let h: HashMap<String, String> = self.query(&cmd).await?;
        stats_from_hash(&format!("link {code}"), &h)
    }

    async fn campaign_totals(&self, campaign: &CampaignId) -> Result<CampaignTotals, StoreError> {
        let mut pipe = redis::pipe();
        pipe.hgetall(keys::campaign_stats(campaign.as_str()))
            .zcard(keys::campaign_index(campaign));
        let (h, links): (HashMap<String, String>, u64) = self.query_pipe(&pipe).await?;
        Ok(CampaignTotals {
            links,
            stats: stats_from_hash(&format!("campaign {}", campaign.as_str()), &h)?,
        })
    }
}

fn add_full(cmd: &mut redis::Cmd, kind: &str, id: &str, count: &Count) {
    cmd.arg(kind)
        .arg(id)
        .arg(count.clicks)
        .arg(count.bot_clicks)
        .arg(count.click_events)
        .arg(count.last_clicked_at.unwrap_or(0));
}
