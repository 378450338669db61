//! A campaign's time series: what each bucket counts, the tiers of buckets, and what a
//! write adds to them.

use super::Os;
use crate::domain::rules::MessageCounter;
use crate::domain::{CampaignId, ClickCounts};
use std::collections::BTreeMap;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The upper bounds (seconds) of the time-to-click bands, `None` for beyond a day.
pub const TTC_BANDS: [Option<i64>; 7] = [
    Some(60),
    Some(300),
    Some(900),
    Some(3_600),
    Some(21_600),
    Some(86_400),
    None,
];

/// The band of the time from a link's delivery to its first human click (both unix ms).
/// A click reported before its delivery (the sender's clock, or a late report) is in the
/// first band.
pub fn time_to_click_band(delivered_at: i64, clicked_at: i64) -> usize {
    let ms = clicked_at - delivered_at;
    let within = |band: &Option<i64>| band.is_none_or(|le| ms <= le * 1_000);
    TTC_BANDS
        .iter()
        .position(within)
        .unwrap_or(TTC_BANDS.len() - 1)
}

/// What one bucket of a campaign's series counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BucketCounts {
    pub clicks: u64,
    /// Links whose first human click fell in the bucket.
    pub unique_clicks: u64,
    pub click_events: u64,
    pub bot_clicks: u64,
    pub messages_sent: u64,
    pub messages_delivered: u64,
    /// Human clicks by system, in [`Os::ALL`]'s order.
    pub os: [u64; 6],
    /// Links whose first human click fell in the bucket, by band of [`TTC_BANDS`].
    pub time_to_click: [u64; 7],
}

/// How many numbers a bucket holds.
const VALUES: usize = 6 + 6 + 7;

impl BucketCounts {
    pub fn add(&mut self, other: &BucketCounts) {
        let mut sum = self.values();
        for (s, o) in sum.iter_mut().zip(other.values()) {
            *s += o;
        }
        *self = Self::from_values(&sum);
    }

    pub fn is_empty(&self) -> bool {
        self.values().iter().all(|v| *v == 0)
    }

    /// Counts a human click, by its system. In place: the redirect path counts every click
    /// in its campaign's minute.
    pub fn add_human_click(&mut self, os: Os, with_event: bool) {
        self.clicks += 1;
        self.click_events += u64::from(with_event);
        self.os[os.index()] += 1;
    }

    /// Counts a bot's click (bots have no system that counts).
    pub fn add_bot_click(&mut self) {
        self.bot_clicks += 1;
    }

    fn values(&self) -> [u64; VALUES] {
        let mut v = [0; VALUES];
        v[..6].copy_from_slice(&[
            self.clicks,
            self.unique_clicks,
            self.click_events,
            self.bot_clicks,
            self.messages_sent,
            self.messages_delivered,
        ]);
        v[6..12].copy_from_slice(&self.os);
        v[12..].copy_from_slice(&self.time_to_click);
        v
    }

    fn from_values(v: &[u64]) -> Self {
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        Self {
            clicks: at(0),
            unique_clicks: at(1),
            click_events: at(2),
            bot_clicks: at(3),
            messages_sent: at(4),
            messages_delivered: at(5),
            os: std::array::from_fn(|i| at(6 + i)),
            time_to_click: std::array::from_fn(|i| at(12 + i)),
        }
    }

    /// The stored form of a bucket, in both stores: its numbers in a fixed order, in base
    /// 36, comma separated, without trailing zeros (most buckets hold a few clicks and
    /// nothing else). Short values matter on Redis: a hash whose values all stay within
    /// 64 bytes is kept as a compact listpack, and a full bucket of three-digit numbers
    /// takes 56 bytes in base 36 (75 in decimal). Adding two stored forms number by number
    /// adds the buckets, which is how the Redis script merges a write into a bucket
    /// without knowing what the numbers mean.
    pub fn encode(&self) -> String {
        let values = self.values();
        let len = values.iter().rposition(|v| *v != 0).map_or(0, |i| i + 1);
        let text: Vec<String> = values[..len].iter().map(|v| base36(*v)).collect();
        text.join(",")
    }

    /// Reads [`Self::encode`]'s form; `None` if it is not one.
    pub fn decode(text: &str) -> Option<Self> {
        if text.is_empty() {
            return Some(Self::default());
        }
        let values: Vec<u64> = (text.split(','))
            .map(|v| u64::from_str_radix(v, 36).ok())
            .collect::<Option<_>>()?;
        (values.len() <= VALUES).then(|| Self::from_values(&values))
    }
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// The two sizes of bucket every write goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// A minute each, for the last two days.
    Minute,
    /// A quarter of an hour each, for the months a campaign is looked back on.
    Quarter,
}

impl Tier {
    pub const ALL: [Tier; 2] = [Tier::Minute, Tier::Quarter];

    pub fn bucket_ms(self) -> i64 {
        match self {
            Tier::Minute => MINUTE_MS,
            Tier::Quarter => 15 * MINUTE_MS,
        }
    }

    /// How long a bucket is kept after it ends. Minutes cover the `minute` interval, which
    /// reaches back 48 hours; quarters a little over a year of a campaign's life.
    pub fn kept_ms(self) -> i64 {
        match self {
            Tier::Minute => 49 * HOUR_MS,
            Tier::Quarter => 400 * DAY_MS,
        }
    }

    /// How many buckets a block holds: the stores keep a block of buckets together (a
    /// Redis hash each, small enough to stay a compact listpack).
    pub fn block_ms(self) -> i64 {
        match self {
            Tier::Minute => HOUR_MS,
            Tier::Quarter => 6 * HOUR_MS,
        }
    }

    pub fn letter(self) -> &'static str {
        match self {
            Tier::Minute => "m",
            Tier::Quarter => "q",
        }
    }

    /// The start (unix ms) of the bucket holding `at`.
    pub fn bucket_of(self, at: i64) -> i64 {
        at - at.rem_euclid(self.bucket_ms())
    }

    /// The start of the block holding `at`.
    pub fn block_of(self, at: i64) -> i64 {
        at - at.rem_euclid(self.block_ms())
    }

    /// A bucket's place in its block, which names it there.
    pub fn offset_in_block(self, start: i64) -> i64 {
        (start - self.block_of(start)) / self.bucket_ms()
    }

    /// When the block holding `at` may be forgotten (unix ms).
    pub fn block_expires_at(self, at: i64) -> i64 {
        self.block_of(at) + self.block_ms() + self.kept_ms()
    }
}

/// A link's first human click, as the store found it when the click was counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstClick {
    pub campaign: CampaignId,
    /// Unix ms.
    pub at: i64,
    /// When a message carrying the link was first reported delivered, if it was.
    pub delivered_at: Option<i64>,
}

/// What one write adds to campaign series: bucket starts by campaign and tier, in an order
/// that does not depend on how the write was put together (a retried write must name its
/// parts the same way).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeriesDelta {
    pub buckets: BTreeMap<(CampaignId, Tier, i64), BucketCounts>,
}

impl SeriesDelta {
    /// Adds `add` to the buckets of both tiers that hold `at`.
    pub fn add(&mut self, campaign: &CampaignId, at: i64, add: &BucketCounts) {
        for tier in Tier::ALL {
            let key = (campaign.clone(), tier, tier.bucket_of(at));
            self.buckets.entry(key).or_default().add(add);
        }
    }

    /// The clicks of a counts flush, by the minute they were counted in.
    pub fn of_counts(counts: &ClickCounts) -> Self {
        let mut delta = Self::default();
        for (campaign, count) in &counts.campaigns {
            for (minute, bucket) in &count.minutes {
                delta.add(campaign, *minute, bucket);
            }
        }
        delta
    }

    /// A link's first human click: a unique click, and its time to click if the link was
    /// delivered.
    pub fn first_click(&mut self, first: &FirstClick) {
        let mut add = BucketCounts {
            unique_clicks: 1,
            ..BucketCounts::default()
        };
        if let Some(delivered_at) = first.delivered_at {
            add.time_to_click[time_to_click_band(delivered_at, first.at)] = 1;
        }
        self.add(&first.campaign, first.at, &add);
    }

    /// The first report of a message's status, in the bucket of the report's time.
    pub fn message(&mut self, campaign: &CampaignId, counter: MessageCounter, at: i64) {
        let add = match counter {
            MessageCounter::Sent => BucketCounts {
                messages_sent: 1,
                ..BucketCounts::default()
            },
            MessageCounter::Delivered => BucketCounts {
                messages_delivered: 1,
                ..BucketCounts::default()
            },
        };
        self.add(campaign, at, &add);
    }

    /// A link reported delivered after its first click: its time to click, in the bucket
    /// of that click.
    pub fn delivered_after_click(
        &mut self,
        campaign: &CampaignId,
        delivered_at: i64,
        clicked_at: i64,
    ) {
        let mut add = BucketCounts::default();
        add.time_to_click[time_to_click_band(delivered_at, clicked_at)] = 1;
        self.add(campaign, clicked_at, &add);
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_is_stored_as_its_numbers_without_trailing_zeros() {
        let mut b = BucketCounts {
            clicks: 3,
            bot_clicks: 2,
            ..BucketCounts::default()
        };
        assert_eq!(b.encode(), "3,0,0,2");
        b.time_to_click[6] = 1;
        b.clicks = 999;
        assert_eq!(b.encode(), "rr,0,0,2,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1");
        let full = BucketCounts::decode(&["rr"; VALUES].join(",")).unwrap();
        assert_eq!(full.os, [999; 6]);
        assert!(
            full.encode().len() <= 64,
            "a full bucket of 3-digit numbers fits a listpack value"
        );
        assert_eq!(BucketCounts::decode(&b.encode()), Some(b));
        assert_eq!(BucketCounts::decode(""), Some(BucketCounts::default()));
        assert_eq!(BucketCounts::decode("1,x!"), None);
        assert_eq!(BucketCounts::decode(&"1,".repeat(20)), None);
    }

    #[test]
    fn time_to_click_bands_hold_their_upper_bound() {
        let band = |seconds: i64| time_to_click_band(1_000_000, 1_000_000 + seconds * 1_000);
        assert_eq!(band(-5), 0);
        assert_eq!(band(60), 0);
        assert_eq!(band(61), 1);
        assert_eq!(
            time_to_click_band(0, 300_001),
            2,
            "above 300 s is the next band"
        );
        assert_eq!(band(900), 2);
        assert_eq!(band(86_400), 5);
        assert_eq!(band(86_401), 6);
    }

    #[test]
    fn buckets_and_blocks_start_on_their_boundaries() {
        let at = 1_764_000_123_456; // 2025-11-24T16:02:03.456Z
        assert_eq!(Tier::Minute.bucket_of(at), 1_764_000_120_000);
        assert_eq!(Tier::Quarter.bucket_of(at) % (15 * MINUTE_MS), 0);
        assert!(Tier::Quarter.bucket_of(at) <= at && at < Tier::Quarter.bucket_of(at) + 900_000);
        assert_eq!(Tier::Quarter.block_of(at) % (6 * HOUR_MS), 0);
        assert_eq!(Tier::Minute.bucket_of(-1), -MINUTE_MS);
    }

    #[test]
    fn a_first_click_counts_once_in_both_tiers_with_its_band() {
        let campaign = CampaignId::parse("c").unwrap();
        let mut delta = SeriesDelta::default();
        delta.first_click(&FirstClick {
            campaign: campaign.clone(),
            at: 10 * MINUTE_MS + 5,
            delivered_at: Some(MINUTE_MS),
        });
        assert_eq!(delta.buckets.len(), 2);
        let minute = delta.buckets[&(campaign.clone(), Tier::Minute, 10 * MINUTE_MS)];
        assert_eq!(minute.unique_clicks, 1);
        assert_eq!(
            minute.time_to_click[2], 1,
            "9 minutes is in the 15-minute band"
        );
        assert_eq!(delta.buckets[&(campaign, Tier::Quarter, 0)], minute);
    }
}
