//! Clicks, events and counters in SQLite: see the schema in the parent module.

use super::super::{
    ClickCounts, ClickOutcome, ClickStore, Count, LeadClick, Stats, StoreError, Subscription,
};
use super::webhooks::load_subscriptions;
use super::{EmbeddedStore, unavailable};
use crate::domain::{CampaignId, ShortCode, from_millis, now_millis};
use crate::events::Event;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

/// Stores `event` and one pending delivery for each subscription in `subs` that wants it.
pub(super) fn enqueue(
    conn: &Connection,
    event: &Event,
    subs: &[Subscription],
) -> rusqlite::Result<()> {
    let created = event.created_at.timestamp_millis();
    conn.prepare_cached(
        "INSERT OR IGNORE INTO events (id, event_type, campaign_id, body, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        event.id,
        event.event_type.as_str(),
        event.campaign_id.as_str(),
        event.body,
        created
    ])?;
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO deliveries (sub_id, event_id, event_type, status, \
         next_attempt_at, created_at) VALUES (?1, ?2, ?3, 'pending', ?4, ?4)",
    )?;
    for sub in subs
        .iter()
        .filter(|s| s.wants(event.event_type, &event.campaign_id))
    {
        insert.execute(params![
            sub.id,
            event.id,
            event.event_type.as_str(),
            created
        ])?;
    }
    Ok(())
}

/// Adds `count` to the counters row `id` of `table`.
fn bump_one(
    conn: &Connection,
    table: &str,
    key: &str,
    id: &str,
    count: &Count,
) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO {table} ({key}, clicks, click_events, bot_clicks, last_clicked_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT ({key}) DO UPDATE SET \
         clicks = clicks + ?2, click_events = click_events + ?3, bot_clicks = bot_clicks + ?4, \
         last_clicked_at = max(ifnull(last_clicked_at, 0), ifnull(?5, 0))"
    ))?
    .execute(params![
        id,
        count.clicks as i64,
        count.click_events as i64,
        count.bot_clicks as i64,
        count.last_clicked_at
    ])?;
    Ok(())
}

/// Records one lead click; the window is judged in click time, as in the Redis store. Its
/// counters are added with the other counts.
fn record(
    conn: &Connection,
    click: &LeadClick,
    subs: &[Subscription],
) -> rusqlite::Result<ClickOutcome> {
    let at = click.at.timestamp_millis();
    let window = click.window.as_millis() as i64;
    let code = click.code.as_str();
    let open: Option<(i64, String)> = conn
        .prepare_cached("SELECT opened_at, event_id FROM windows WHERE code = ?1")?
        .query_row([code], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match open {
        // This very click, written before.
        Some((_, by)) if by == click.event.id => return Ok(ClickOutcome::Emitted),
        Some((opened, _)) if at < opened + window => {
            return Ok(ClickOutcome::Deduplicated {
                window_opened_at: from_millis(opened),
            });
        }
        _ => {}
    }
    let now = now_millis().timestamp_millis();
    conn.prepare_cached(
        "INSERT INTO windows (code, opened_at, expires_at, event_id) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (code) DO UPDATE SET opened_at = ?2, expires_at = ?3, event_id = ?4",
    )?
    .execute(params![
        code,
        at,
        (at + window).max(now + window),
        click.event.id
    ])?;
    enqueue(conn, &click.event, subs)?;
    Ok(ClickOutcome::Emitted)
}

fn stats_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Stats> {
    Ok(Stats {
        clicks: row.get::<_, i64>(0)? as u64,
        click_events: row.get::<_, i64>(1)? as u64,
        bot_clicks: row.get::<_, i64>(2)? as u64,
        last_clicked_at: row
            .get::<_, Option<i64>>(3)?
            .filter(|t| *t > 0)
            .map(from_millis),
        messages_sent: row.get::<_, i64>(4)? as u64,
        messages_delivered: row.get::<_, i64>(5)? as u64,
    })
}

#[async_trait]
impl ClickStore for EmbeddedStore {
    async fn record_lead_clicks(
        &self,
        clicks: &[LeadClick],
    ) -> Result<Vec<ClickOutcome>, StoreError> {
        let clicks = clicks.to_vec();
        let outcomes = self
            .write(move |conn| {
                let subs = load_subscriptions(conn)?;
                clicks
                    .iter()
                    .map(|c| record(conn, c, &subs).map_err(unavailable))
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
                .map_err(unavailable)?;
            if fresh == 0 {
                return Ok(());
            }
            for (code, count) in &counts.links {
                bump_one(conn, "link_stats", "code", code.as_str(), count).map_err(unavailable)?;
            }
            for (campaign, count) in &counts.campaigns {
                bump_one(
                    conn,
                    "campaign_stats",
                    "campaign_id",
                    campaign.as_str(),
                    count,
                )
                .map_err(unavailable)?;
            }
            Ok(())
        })
        .await
    }

    async fn enqueue_events(&self, events: &[Event]) -> Result<(), StoreError> {
        let events = events.to_vec();
        self.write(move |conn| {
            let subs = load_subscriptions(conn)?;
            events
                .iter()
                .try_for_each(|e| enqueue(conn, e, &subs))
                .map_err(unavailable)
        })
        .await?;
        self.due.notify_one();
        Ok(())
    }

    async fn link_stats(&self, code: &ShortCode) -> Result<Stats, StoreError> {
        let code = code.clone();
        self.read(move |conn| {
            conn.query_row(
                "SELECT clicks, click_events, bot_clicks, last_clicked_at, 0, 0 \
                 FROM link_stats WHERE code = ?1",
                [code.as_str()],
                stats_row,
            )
            .optional()
            .map(Option::unwrap_or_default)
            .map_err(unavailable)
        })
        .await
    }

    async fn campaign_stats(&self, campaign: &CampaignId) -> Result<(u64, Stats), StoreError> {
        let campaign = campaign.clone();
        self.read(move |conn| {
            let links: i64 = conn
                .query_row(
                    "SELECT count(*) FROM links WHERE campaign_id = ?1",
                    [campaign.as_str()],
                    |r| r.get(0),
                )
                .map_err(unavailable)?;
            let stats = conn
                .query_row(
                    "SELECT clicks, click_events, bot_clicks, last_clicked_at, messages_sent, \
                     messages_delivered FROM campaign_stats WHERE campaign_id = ?1",
                    [campaign.as_str()],
                    stats_row,
                )
                .optional()
                .map_err(unavailable)?
                .unwrap_or_default();
            Ok((links as u64, stats))
        })
        .await
    }
}
