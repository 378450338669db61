//! Campaign time series in SQLite: a row per bucket, added to inside the transaction of
//! the counts or status report it comes from.

use super::{corrupt, sqlite};
use crate::domain::CampaignId;
use crate::domain::analytics::{BucketCounts, SeriesDelta, Tier};
use crate::store::StoreError;
use rusqlite::{Connection, OptionalExtension, params};

pub(super) fn add_series(conn: &Connection, delta: &SeriesDelta) -> Result<(), StoreError> {
    for ((campaign, tier, start), add) in &delta.buckets {
        let known: Option<String> = conn
            .prepare_cached(
                "SELECT counts FROM campaign_series \
                 WHERE campaign_id = ?1 AND tier = ?2 AND start = ?3",
            )
            .and_then(|mut s| {
                s.query_row(params![campaign.as_str(), tier.letter(), start], |r| {
                    r.get(0)
                })
                .optional()
            })
            .map_err(sqlite)?;
        let mut counts = match known {
            Some(text) => BucketCounts::decode(&text)
                .ok_or_else(|| corrupt(format!("series bucket {text:?}")))?,
            None => BucketCounts::default(),
        };
        counts.add(add);
        conn.prepare_cached(
            "INSERT OR REPLACE INTO campaign_series \
             (campaign_id, tier, start, counts, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut s| {
            s.execute(params![
                campaign.as_str(),
                tier.letter(),
                start,
                counts.encode(),
                tier.block_expires_at(*start)
            ])
        })
        .map_err(sqlite)?;
    }
    Ok(())
}

/// The campaign's buckets of `tier` starting in `[from, end)`, oldest first.
pub(super) fn series_buckets(
    conn: &Connection,
    campaign: &CampaignId,
    tier: Tier,
    from: i64,
    end: i64,
) -> Result<Vec<(i64, BucketCounts)>, StoreError> {
    let mut statement = conn
        .prepare_cached(
            "SELECT start, counts FROM campaign_series \
             WHERE campaign_id = ?1 AND tier = ?2 AND start >= ?3 AND start < ?4 ORDER BY start",
        )
        .map_err(sqlite)?;
    let rows = statement
        .query_map(params![campaign.as_str(), tier.letter(), from, end], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(sqlite)?;
    let mut buckets = Vec::new();
    for row in rows {
        let (start, text) = row.map_err(sqlite)?;
        let counts = BucketCounts::decode(&text)
            .ok_or_else(|| corrupt(format!("series bucket {text:?}")))?;
        buckets.push((start, counts));
    }
    Ok(buckets)
}
