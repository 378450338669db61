//! Campaign time series in Redis: each campaign's buckets in its own partition, a hash per
//! block of buckets (see [`super::keys`]), added to by `lua/add_series.lua`.

use super::RedisStore;
use super::clicks::APPLIED_FOR_MS;
use super::keys::Partition;
use super::scripts::SCRIPTS;
use crate::domain::CampaignId;
use crate::domain::analytics::{BucketCounts, SeriesDelta, Tier};
use crate::store::StoreError;
use std::collections::HashMap;

/// Buckets per call of the series script: no call holds Redis for long.
const BUCKETS_PER_CALL: usize = 200;

impl RedisStore {
    /// Adds `delta` under the name `name`: written again under the same name (a retry),
    /// it adds nothing more. The calls are named by their partition and place, which the
    /// delta's order fixes.
    pub(super) async fn add_series(
        &self,
        name: &str,
        delta: &SeriesDelta,
    ) -> Result<(), StoreError> {
        if delta.is_empty() {
            return Ok(());
        }
        let by_partition = Partition::group(delta.buckets.iter(), |((campaign, _, _), _)| {
            Partition::of(campaign.as_str())
        });
        let name = format!("{name}.series");
        let writes = by_partition.into_iter().map(|(partition, buckets)| {
            let route = partition.ready();
            let mut pipe = redis::pipe();
            for (n, chunk) in buckets.chunks(BUCKETS_PER_CALL).enumerate() {
                let mut cmd = SCRIPTS.add_series.call(&[&route]);
                cmd.arg(partition.applied(&name, n)).arg(APPLIED_FOR_MS);
                for ((campaign, tier, start), counts) in chunk {
                    cmd.arg(partition.series(*tier, campaign, tier.block_of(*start)))
                        .arg(tier.offset_in_block(*start))
                        .arg(tier.block_expires_at(*start))
                        .arg(counts.encode());
                }
                pipe.add_command(cmd).ignore();
            }
            async move { self.run::<()>(&pipe).await }
        });
        futures::future::try_join_all(writes).await.map(drop)
    }

    /// The campaign's buckets of `tier` that start in `[from, end)` (unix ms), the empty
    /// ones left out.
    pub(super) async fn series_buckets(
        &self,
        campaign: &CampaignId,
        tier: Tier,
        from: i64,
        end: i64,
    ) -> Result<Vec<(i64, BucketCounts)>, StoreError> {
        let partition = Partition::of(campaign.as_str());
        let blocks: Vec<i64> = (0..)
            .map(|n| tier.block_of(from) + n * tier.block_ms())
            .take_while(|block| *block < end)
            .collect();
        let reads = (blocks.iter())
            .map(|block| {
                let mut cmd = redis::cmd("HGETALL");
                cmd.arg(partition.series(tier, campaign, *block));
                cmd
            })
            .collect();
        let hashes: Vec<HashMap<String, String>> = self.spread(reads).await?;
        let corrupt = |what: &str| {
            StoreError::Corrupt(format!("series of campaign {}: {what}", campaign.as_str()))
        };
        let mut buckets = Vec::new();
        let fields = blocks
            .iter()
            .zip(hashes)
            .flat_map(|(block, h)| h.into_iter().map(move |f| (*block, f)));
        for (block, (field, value)) in fields {
            let offset: i64 = field.parse().map_err(|_| corrupt(&field))?;
            let start = block + offset * tier.bucket_ms();
            let counts = BucketCounts::decode(&value).ok_or_else(|| corrupt(&value))?;
            if (from..end).contains(&start) {
                buckets.push((start, counts));
            }
        }
        Ok(buckets)
    }
}
