//! Clicks, counts and counters in Redis.

use super::keys::Partition;
use super::scripts::SCRIPTS;
use super::{RedisStore, parse};
use crate::domain::analytics::{BucketCounts, FirstClick, SeriesDelta, Tier};
use crate::domain::{
    CampaignId, ClickCounts, ClickOutcome, Count, LeadClick, ShortCode, Stats, from_millis,
    now_millis,
};
use crate::store::{CampaignTotals, ClickStore, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Lead clicks per call of the click script: a batch is a few calls with one reply each,
/// and no call holds Redis for more than about a millisecond.
const CLICKS_PER_CALL: usize = 64;
/// Counters per call of the counts script, for the same reason.
const COUNTS_PER_CALL: usize = 500;
/// How long a window key outlives a short window: longer than any retry of a click write
/// takes to follow the write it repeats.
const WINDOW_KEPT_MS: u64 = 60_000;
/// How long a batch of lead clicks waits for replicas (`AKTI_REDIS_WAIT_REPLICAS`) before
/// its redirects are answered anyway.
pub(super) const WAIT_FOR_REPLICAS: Duration = Duration::from_millis(100);
/// How long a counts call is remembered as applied: far longer than a retry can follow it.
pub(super) const APPLIED_FOR_MS: u64 = 10 * 60_000;

/// The counters hash of a link or a campaign. A counter that is absent is 0; one that is
/// not a number was not written by us.
fn stats_from_hash(what: &str, h: &HashMap<String, String>) -> Result<Stats, StoreError> {
    let n = |k: &str| -> Result<u64, StoreError> {
        h.get(k).map_or(Ok(0), |v| {
            v.parse()
                .map_err(|_| StoreError::Corrupt(format!("{what}: {k} is {v:?}")))
        })
    };
    let time = |k: &str| -> Result<Option<DateTime<Utc>>, StoreError> {
        h.get(k)
            .map(|v| {
                v.parse()
                    .map(from_millis)
                    .map_err(|_| StoreError::Corrupt(format!("{what}: {k} is {v:?}")))
            })
            .transpose()
    };
    Ok(Stats {
        clicks: n("clicks")?,
        click_events: n("clickEvents")?,
        unique_clicks: n("uniqueClicks")?,
        bot_clicks: n("botClicks")?,
        last_clicked_at: time("lastClickedAt")?,
        first_clicked_at: time("firstClickedAt")?,
        delivered_at: time("deliveredAt")?,
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
        let by_partition = Partition::group(clicks, |c| Partition::of(c.code.as_str()));
        let calls = (by_partition.iter())
            .map(|(partition, clicks)| self.record_in(*partition, clicks, window));
        let answers = futures::future::try_join_all(calls).await?;
        // Back into the order of `clicks`.
        let mut answers: BTreeMap<Partition, std::vec::IntoIter<i64>> = (by_partition.keys())
            .copied()
            .zip(answers.into_iter().map(Vec::into_iter))
            .collect();
        clicks
            .iter()
            .map(|click| {
                let answer = (answers.get_mut(&Partition::of(click.code.as_str())))
                    .and_then(Iterator::next)
                    .ok_or_else(|| {
                        StoreError::Corrupt("the click script answered too few times".into())
                    })?;
                Ok(match answer {
                    opened if opened < 0 => ClickOutcome::Deduplicated {
                        window_opened_at: from_millis(-opened),
                    },
                    _ => ClickOutcome::Emitted,
                })
            })
            .collect()
    }

    async fn add_click_counts(&self, batch: &str, counts: &ClickCounts) -> Result<(), StoreError> {
        if counts.is_empty() {
            return Ok(());
        }
        // Link counters live in their code's partition; a campaign's in its id's, one
        // write per flush (the partitions' figures are summed when read).
        // A link's unique click is counted in a part of its campaign's counters in the
        // link's partition, by the script that sets the link's first click.
        let links = (counts.links.iter()).map(|(code, link)| {
            let counter = Counter {
                kind: "l",
                id: code.as_str(),
                campaign: link.campaign.as_str(),
                count: &link.count,
            };
            (Partition::of(code.as_str()), counter)
        });
        let campaigns = (counts.campaigns.iter()).map(|(campaign, count)| {
            let counter = Counter {
                kind: "c",
                id: campaign.as_str(),
                campaign: "",
                count: &count.count,
            };
            (Partition::of(campaign.as_str()), counter)
        });
        let by_partition = Partition::group(links.chain(campaigns), |(p, _)| *p);
        let calls = (by_partition.into_iter()).map(|(partition, counters)| {
            let counters = counters.into_iter().map(|(_, c)| c).collect();
            self.add_counts_in(partition, batch, counters)
        });
        let answers = futures::future::try_join_all(calls).await?;
        // Then the campaigns' series, with the first clicks the counters found: a retried
        // flush finds the same answers (kept with the calls' names) and the same series.
        let mut series = SeriesDelta::of_counts(counts);
        for answer in answers.iter().flatten() {
            for first in first_clicks(answer, counts) {
                series.first_click(&first);
            }
        }
        self.add_series(batch, &series).await
    }

    async fn link_stats(&self, code: &ShortCode) -> Result<Stats, StoreError> {
        let mut stats = self.links_stats(std::slice::from_ref(code)).await?;
        Ok(stats.pop().unwrap_or_default())
    }

    async fn links_stats(&self, codes: &[ShortCode]) -> Result<Vec<Stats>, StoreError> {
        let reads = (codes.iter())
            .map(|code| {
                let mut cmd = redis::cmd("HGETALL");
                cmd.arg(Partition::of(code.as_str()).link_stats(code.as_str()));
                cmd
            })
            .collect();
        let hashes: Vec<HashMap<String, String>> = self.spread(reads).await?;
        (codes.iter().zip(hashes))
            .map(|(code, h)| stats_from_hash(&format!("link {code}"), &h))
            .collect()
    }

    async fn campaign_totals(&self, campaign: &CampaignId) -> Result<CampaignTotals, StoreError> {
        let what = format!("campaign {}", campaign.as_str());
        let mut reads = Vec::new();
        for p in Partition::all() {
            let (mut hgetall, mut zcard) = (redis::cmd("HGETALL"), redis::cmd("ZCARD"));
            hgetall.arg(p.campaign_stats(campaign.as_str()));
            zcard.arg(p.campaign_index(campaign));
            reads.push(hgetall);
            reads.push(zcard);
        }
        let replies: Vec<redis::Value> = self.spread(reads).await?;
        let mut totals = CampaignTotals::default();
        for pair in replies.chunks(2) {
            let h: HashMap<String, String> = parse(&pair[0])?;
            let links: u64 = parse(&pair[1])?;
            totals.links += links;
            totals.stats.add(&stats_from_hash(&what, &h)?);
        }
        Ok(totals)
    }

    async fn campaign_series(
        &self,
        campaign: &CampaignId,
        tier: Tier,
        from: i64,
        end: i64,
    ) -> Result<Vec<(i64, BucketCounts)>, StoreError> {
        self.series_buckets(campaign, tier, from, end).await
    }
}

/// One counter of a flush: `l` a link's (with its campaign) or `c` a campaign's, its code
/// or id, what to add.
struct Counter<'a> {
    kind: &'static str,
    id: &'a str,
    campaign: &'a str,
    count: &'a Count,
}

impl RedisStore {
    /// Lead clicks of one partition: a pipeline of script calls, and `WAIT` after them
    /// when replicas must hold them. Answers one number per click (`lua/lead_clicks.lua`),
    /// and wakes this instance's dispatcher if they queued deliveries.
    async fn record_in(
        &self,
        partition: Partition,
        clicks: &[&LeadClick],
        window: Duration,
    ) -> Result<Vec<i64>, StoreError> {
        let (ready, fan_out, windows) =
            (partition.ready(), partition.fan_out(), partition.windows());
        let mut pipe = redis::pipe();
        for chunk in clicks.chunks(CLICKS_PER_CALL) {
            let mut cmd = SCRIPTS.lead_clicks.call(&[&ready]);
            cmd.arg(&fan_out[..])
                .arg(&windows)
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
        let calls: Vec<Vec<i64>> = if self.wait_replicas == 0 {
            self.run(&pipe).await?
        } else {
            // In the pipeline, WAIT keeps its route: it runs on the partition's primary,
            // after the scripts.
            pipe.cmd("WAIT")
                .arg(self.wait_replicas)
                .arg(WAIT_FOR_REPLICAS.as_millis() as u64);
            let mut replies: Vec<redis::Value> =
                self.run_on(&mut self.durable.clone(), &pipe).await?;
            let acknowledged: u32 = (replies.pop()).map(|v| parse(&v)).transpose()?.unwrap_or(0);
            if acknowledged < self.wait_replicas {
                replication_shortfall(partition, acknowledged, self.wait_replicas);
            }
            (replies.iter()).map(parse).collect::<Result<_, _>>()?
        };
        // Each call answers its clicks, then the deliveries it queued.
        let mut answers = Vec::with_capacity(clicks.len());
        let mut queued = 0;
        for mut call in calls {
            queued += call.pop().unwrap_or(0);
            answers.append(&mut call);
        }
        if answers.len() != clicks.len() {
            return Err(StoreError::Corrupt(format!(
                "the click script answered {} times for {} clicks",
                answers.len(),
                clicks.len()
            )));
        }
        if queued > 0 {
            self.queued.notify_waiters();
        }
        Ok(answers)
    }

    /// One partition's counters, a script call per [`COUNTS_PER_CALL`], each named by the
    /// batch, the partition and its place: the same counts always make the same calls (a
    /// map unchanged iterates in the same order), so a retried batch repeats its names.
    /// Answers each call's first clicks (`lua/add_counts.lua`).
    async fn add_counts_in(
        &self,
        partition: Partition,
        batch: &str,
        counters: Vec<Counter<'_>>,
    ) -> Result<Vec<String>, StoreError> {
        let (bots_only, full): (Vec<_>, Vec<_>) = counters
            .into_iter()
            .partition(|c| c.kind == "l" && c.count.clicks == 0 && c.count.click_events == 0);
        let stats = partition.stats();
        let route = partition.ready();
        let mut pipe = redis::pipe();
        let mut calls = 0;
        let mut call = |grouping: &str| {
            let mut cmd = SCRIPTS.add_counts.call(&[&route]);
            cmd.arg(partition.applied(batch, calls))
                .arg(APPLIED_FOR_MS)
                .arg(&stats[..])
                .arg(grouping);
            calls += 1;
            cmd
        };
        for chunk in full.chunks(COUNTS_PER_CALL) {
            let mut cmd = call("f");
            for counter in chunk {
                add_full(&mut cmd, counter);
            }
            pipe.add_command(cmd);
        }
        for chunk in bots_only.chunks(COUNTS_PER_CALL) {
            let mut cmd = call("b");
            for counter in chunk {
                cmd.arg(counter.id).arg(counter.count.bot_clicks);
            }
            pipe.add_command(cmd);
        }
        self.run(&pipe).await
    }
}

/// Fewer replicas than asked hold a batch of clicks: the redirects are answered anyway
/// (a lead is not kept waiting on a replica), and the shortfall is counted and logged.
fn replication_shortfall(partition: Partition, acknowledged: u32, wanted: u32) {
    static LAST_LOGGED: AtomicI64 = AtomicI64::new(0);
    metrics::counter!("akti_clicks_unreplicated_batches_total").increment(1);
    let now = now_millis().timestamp_millis();
    let last = LAST_LOGGED.load(Ordering::Relaxed);
    if now - last >= 10_000
        && LAST_LOGGED
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(
            partition = partition.index(),
            acknowledged,
            wanted,
            "click batch answered before enough replicas held it"
        );
    }
}

/// The first clicks in a counts call's answer (`code:first:delivered` words), with the
/// campaigns of their links in `counts`. A word of another shape, or of a link these
/// counts do not hold, is not ours and is left out.
fn first_clicks<'a>(
    answer: &'a str,
    counts: &'a ClickCounts,
) -> impl Iterator<Item = FirstClick> + 'a {
    answer.split_ascii_whitespace().filter_map(|word| {
        let mut parts = word.split(':');
        let (code, at, delivered) = (parts.next()?, parts.next()?, parts.next()?);
        let at: i64 = at.parse().ok()?;
        let delivered: i64 = delivered.parse().ok()?;
        Some(FirstClick {
            campaign: counts.links.get(code)?.campaign.clone(),
            at,
            delivered_at: (delivered > 0).then_some(delivered),
        })
    })
}

fn add_full(cmd: &mut redis::Cmd, counter: &Counter<'_>) {
    let count = counter.count;
    cmd.arg(counter.kind)
        .arg(counter.id)
        .arg(counter.campaign)
        .arg(count.clicks)
        .arg(count.bot_clicks)
        .arg(count.click_events)
        .arg(count.last_clicked_at.unwrap_or(0))
        .arg(count.first_clicked_at.unwrap_or(0));
}
