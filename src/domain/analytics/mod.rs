//! Campaign analytics: what a click or a status report adds to its campaign's time series
//! ([`buckets`]), the system a click came from ([`os`]), and a report over a range in a
//! time zone ([`report`]).
//!
//! Both stores keep the same series: per campaign, buckets of a quarter of an hour (fine
//! enough for every time zone in use, whose offsets are whole quarters: India +05:30,
//! Nepal +05:45) kept for [`Tier::Quarter`]'s retention, and buckets of a minute kept for
//! the last two days. A report reads one tier and sums its buckets into the intervals of
//! the zone asked for.

mod buckets;
mod os;
mod report;

pub use buckets::{BucketCounts, FirstClick, SeriesDelta, TTC_BANDS, Tier, time_to_click_band};
pub use os::Os;
pub use report::{AnalyticsQuery, Interval, MAX_BUCKETS, Report, ReportBucket};
