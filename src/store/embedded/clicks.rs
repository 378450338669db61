//! Clicks, counts and counters in SQLite.

use super::outbox::enqueue;
use super::series::{add_series, series_buckets};
use super::subscriptions::enabled_subscriptions;
use super::{EmbeddedStore, sqlite};
use crate::domain::analytics::{BucketCounts, FirstClick, SeriesDelta, Tier};
use crate::domain::rules::{self, OpenWindow, WindowDecision};
use crate::domain::{
    CampaignId, ClickCounts, ClickOutcome, Count, LeadClick, ShortCode, Stats, Subscription,
    from_millis, now_millis,
};
use crate::store::{CampaignTotals, ClickStore, StoreError};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use std::time::Duration;

/// Adds `count` to the counters row `id` of `table`.
fn bump(
    conn: &Connection,
    table: &str,
    key: &str,
    id: &str,
    count: &Count,
) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO {table} ({key}, clicks, click_events, bot_clicks, last_clicked_at, \
         first_clicked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT ({key}) DO UPDATE SET \
         clicks = clicks + ?2, click_events = click_events + ?3, bot_clicks = bot_clicks + ?4, \
         last_clicked_at = max(ifnull(last_clicked_at, 0), ifnull(?5, 0)), \
         first_clicked_at = coalesce(min(first_clicked_at, ?6), first_clicked_at, ?6)"
    ))?
    .execute(params![
        id,
        count.clicks as i64,
        count.click_events as i64,
        count.bot_clicks as i64,
        count.last_clicked_at,
        count.first_clicked_at
    ])?;
    Ok(())
}

/// Records one lead click as [`rules::window`] decides. Its counters are added with the
/// other counts.
fn record(
    conn: &Connection,
    click: &LeadClick,
    window: i64,
    subs: &[Subscription],
) -> Result<ClickOutcome, StoreError> {
    let at = click.at.timestamp_millis();
    let code = click.code.as_str();
    let open: Option<(i64, String)> = conn
        .prepare_cached("SELECT opened_at, event_id FROM windows WHERE code = ?1")
        .and_then(|mut s| {
            s.query_row([code], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(sqlite)?;
    let found = open.as_ref().map(|(opened_at, by)| OpenWindow {
        opened_at: *opened_at,
        by,
    });
    match rules::window(found, at, &click.event.id, window) {
        WindowDecision::AlreadyOpened => return Ok(ClickOutcome::Emitted),
        WindowDecision::Inside { opened_at } => {
            return Ok(ClickOutcome::Deduplicated {
                window_opened_at: from_millis(opened_at),
            });
        }
        WindowDecision::Opens => {}
    }
    let now = now_millis().timestamp_millis();
    conn.prepare_cached(
        "INSERT INTO windows (code, opened_at, expires_at, event_id) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (code) DO UPDATE SET opened_at = ?2, expires_at = ?3, event_id = ?4",
    )
    .and_then(|mut s| {
        s.execute(params![
            code,
            at,
            (at + window).max(now + window),
            click.event.id.as_str()
        ])
    })
    .map_err(sqlite)?;
    enqueue(conn, &click.event, subs)?;
    Ok(ClickOutcome::Emitted)
}

/// Whether a link has had no human click yet, and when it was delivered.
fn never_clicked(conn: &Connection, code: &ShortCode) -> Result<(bool, Option<i64>), StoreError> {
    let row: Option<(Option<i64>, Option<i64>)> = conn
        .prepare_cached("SELECT first_clicked_at, delivered_at FROM link_stats WHERE code = ?1")
        .and_then(|mut s| {
            s.query_row([code.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(sqlite)?;
    let (first, delivered) = row.unwrap_or_default();
    Ok((first.is_none(), delivered))
}

fn link_stats_of(conn: &Connection, code: &ShortCode) -> Result<Stats, StoreError> {
    conn.prepare_cached(
        "SELECT clicks, click_events, bot_clicks, last_clicked_at, 0, 0, first_clicked_at, \
         delivered_at, 0 FROM link_stats WHERE code = ?1",
    )
    .and_then(|mut s| s.query_row([code.as_str()], stats_row).optional())
    .map(Option::unwrap_or_default)
    .map_err(sqlite)
}

fn stats_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Stats> {
    let n = |i: usize| row.get::<_, i64>(i).map(|v| v as u64);
    let time = |i: usize| {
        row.get::<_, Option<i64>>(i)
            .map(|t| t.filter(|t| *t > 0).map(from_millis))
    };
    Ok(Stats {
        clicks: n(0)?,
        click_events: n(1)?,
        bot_clicks: n(2)?,
        last_clicked_at: time(3)?,
        messages_sent: n(4)?,
        messages_delivered: n(5)?,
        first_clicked_at: time(6)?,
        delivered_at: time(7)?,
        unique_clicks: n(8)?,
    })
}

#[async_trait]
impl ClickStore for EmbeddedStore {
    async fn record_lead_clicks(
        &self,
        clicks: &[LeadClick],
        window: Duration,
    ) -> Result<Vec<ClickOutcome>, StoreError> {
        let clicks = clicks.to_vec();
        let window = window.as_millis() as i64;
        let outcomes = self
            .write(move |conn| {
                let subs = enabled_subscriptions(conn)?;
                clicks
                    .iter()
                    .map(|c| record(conn, c, window, &subs))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        if outcomes.contains(&ClickOutcome::Emitted) {
            self.due.notify_one();
        }
        Ok(outcomes)
    }

    async fn add_click_counts(&self, batch: &str, counts: &ClickCounts) -> Result<(), StoreError> {
        let (batch, counts) = (batch.to_owned(), counts.clone());
        self.write(move |conn| {
            let fresh = conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO applied_batches (id, applied_at) VALUES (?1, ?2)",
                )
                .and_then(|mut s| s.execute(params![batch, now_millis().timestamp_millis()]))
                .map_err(sqlite)?;
            if fresh == 0 {
                return Ok(());
            }
            let mut series = SeriesDelta::of_counts(&counts);
            for (code, link) in &counts.links {
                if let Some(first) = link.count.first_clicked_at {
                    let (never, delivered_at) = never_clicked(conn, code)?;
                    if never {
                        conn.prepare_cached(
                            "INSERT INTO campaign_stats (campaign_id, unique_clicks) VALUES (?1, 1) \
                             ON CONFLICT (campaign_id) DO UPDATE SET unique_clicks = unique_clicks + 1",
                        )
                        .and_then(|mut s| s.execute([link.campaign.as_str()]))
                        .map_err(sqlite)?;
                        series.first_click(&FirstClick {
                            campaign: link.campaign.clone(),
                            at: first,
                            delivered_at,
                        });
                    }
                }
                bump(conn, "link_stats", "code", code.as_str(), &link.count).map_err(sqlite)?;
            }
            for (campaign, count) in &counts.campaigns {
                bump(
                    conn,
                    "campaign_stats",
                    "campaign_id",
                    campaign.as_str(),
                    &count.count,
                )
                .map_err(sqlite)?;
            }
            add_series(conn, &series)
        })
        .await
    }

    async fn link_stats(&self, code: &ShortCode) -> Result<Stats, StoreError> {
        let code = code.clone();
        self.read(move |conn| link_stats_of(conn, &code)).await
    }

    async fn links_stats(&self, codes: &[ShortCode]) -> Result<Vec<Stats>, StoreError> {
        let codes = codes.to_vec();
        self.read(move |conn| codes.iter().map(|code| link_stats_of(conn, code)).collect())
            .await
    }

    async fn campaign_totals(&self, campaign: &CampaignId) -> Result<CampaignTotals, StoreError> {
        let campaign = campaign.clone();
        self.read(move |conn| {
            let links: i64 = (conn.query_row(
                "SELECT count(*) FROM links WHERE campaign_id = ?1",
                [campaign.as_str()],
                |r| r.get(0),
            ))
            .map_err(sqlite)?;
            let stats = conn
                .query_row(
                    "SELECT clicks, click_events, bot_clicks, last_clicked_at, messages_sent, \
                     messages_delivered, first_clicked_at, NULL, unique_clicks \
                     FROM campaign_stats WHERE campaign_id = ?1",
                    [campaign.as_str()],
                    stats_row,
                )
                .optional()
                .map_err(sqlite)?
                .unwrap_or_default();
            Ok(CampaignTotals {
                links: links as u64,
                stats,
            })
        })
        .await
    }

    async fn campaign_series(
        &self,
        campaign: &CampaignId,
        tier: Tier,
        from: i64,
        end: i64,
    ) -> Result<Vec<(i64, BucketCounts)>, StoreError> {
        let campaign = campaign.clone();
        self.read(move |conn| series_buckets(conn, &campaign, tier, from, end))
            .await
    }
}
