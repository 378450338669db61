//! A campaign's analytics over a range: the query as the API takes it, and the report
//! built from one tier's buckets.

use super::{BucketCounts, Tier};
use crate::domain::InvalidValue;
use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// Most buckets one report holds.
pub const MAX_BUCKETS: usize = 1_500;
/// How far back the `minute` interval reaches (the minute tier's buckets are kept a little
/// longer than this).
const MINUTES_REACH_MS: i64 = 48 * 3_600_000;
/// Up to this range, the default interval is an hour; beyond, a day.
const HOURLY_UP_TO_MS: i64 = 3 * 24 * 3_600_000;
const DEFAULT_RANGE_MS: i64 = 7 * 24 * 3_600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Minute,
    Hour,
    Day,
}

impl Interval {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        match s {
            "minute" => Ok(Self::Minute),
            "hour" => Ok(Self::Hour),
            "day" => Ok(Self::Day),
            _ => Err(InvalidValue::new("interval", "must be minute, hour or day")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }

    /// The usual length, to refuse an obviously too long range before walking it.
    fn nominal_ms(self) -> i64 {
        match self {
            Self::Minute => 60_000,
            Self::Hour => 3_600_000,
            Self::Day => 24 * 3_600_000,
        }
    }

    /// The tier its buckets are summed from.
    pub fn tier(self) -> Tier {
        match self {
            Self::Minute => Tier::Minute,
            Self::Hour | Self::Day => Tier::Quarter,
        }
    }
}

/// A valid analytics query, with its buckets laid out in its time zone.
#[derive(Debug, Clone)]
pub struct AnalyticsQuery {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub interval: Interval,
    pub tz: Tz,
    /// The buckets' starts (unix ms), oldest first, then the end of the last one.
    bounds: Vec<i64>,
}

impl AnalyticsQuery {
    /// The API's parameters as given (all optional), with their defaults and limits, at
    /// `now`.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        interval: Option<&str>,
        tz: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Self, InvalidValue> {
        let time = |field: &'static str, s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| InvalidValue::new(field, "must be an RFC 3339 time"))
        };
        let to = to.map(|s| time("to", s)).transpose()?.unwrap_or(now);
        let from = (from.map(|s| time("from", s)).transpose()?)
            .unwrap_or(to - chrono::Duration::milliseconds(DEFAULT_RANGE_MS));
        if from >= to {
            return Err(InvalidValue::new("from", "must be before to"));
        }
        let tz: Tz = match tz {
            None => Tz::UTC,
            Some(name) => name.parse().map_err(|_| {
                InvalidValue::new("tz", "must be an IANA time zone name, such as Asia/Kolkata")
            })?,
        };
        let range = (to - from).num_milliseconds();
        let interval = match interval {
            Some(s) => Interval::parse(s)?,
            None if range <= HOURLY_UP_TO_MS => Interval::Hour,
            None => Interval::Day,
        };
        if interval == Interval::Minute
            && from.timestamp_millis() < now.timestamp_millis() - MINUTES_REACH_MS
        {
            return Err(InvalidValue::new(
                "interval",
                "minute reaches back 48 hours only; use hour or day for an older from",
            ));
        }
        let too_many = || {
            InvalidValue::new(
                "interval",
                format!(
                    "gives more than {MAX_BUCKETS} buckets for this range; use a longer interval or a shorter range"
                ),
            )
        };
        if range / interval.nominal_ms() > MAX_BUCKETS as i64 {
            return Err(too_many());
        }
        let bounds = bounds(from.timestamp_millis(), to.timestamp_millis(), interval, tz);
        if bounds.len() - 1 > MAX_BUCKETS {
            return Err(too_many());
        }
        Ok(Self {
            from,
            to,
            interval,
            tz,
            bounds,
        })
    }

    /// The tier to read, and the span of its buckets that the report covers: from the
    /// start of the bucket holding `from` to the end of the one holding `to`'s last moment.
    pub fn reads(&self) -> (Tier, i64, i64) {
        let (first, end) = (self.bounds[0], self.bounds[self.bounds.len() - 1]);
        (self.interval.tier(), first, end)
    }

    /// The report from the tier's buckets in [`Self::reads`]'s span (start, counts), in
    /// any order; buckets outside the span are left out.
    pub fn report(&self, fine: &[(i64, BucketCounts)]) -> Report {
        let mut series: Vec<ReportBucket> = (self.bounds.windows(2))
            .map(|w| ReportBucket {
                start: self.tz.timestamp_millis_opt(w[0]).unwrap(),
                counts: BucketCounts::default(),
            })
            .collect();
        let mut totals = BucketCounts::default();
        for (start, counts) in fine {
            // The last bound that is not after the bucket's start.
            let i = self.bounds.partition_point(|b| b <= start);
            if i == 0 || i == self.bounds.len() {
                continue;
            }
            series[i - 1].counts.add(counts);
            totals.add(counts);
        }
        Report {
            query: self.clone(),
            series,
            totals,
        }
    }
}

/// The buckets' starts and the last one's end: the instants, on the tier's grid, where the
/// zone's local minute, hour or date changes, from the bucket holding `from` until the one
/// holding `to - 1 ms` ends. Walking the grid rather than doing calendar arithmetic keeps
/// daylight-saving days (23 or 25 hours, or a midnight that does not exist) right in every
/// zone, since every zone's offset is a whole number of quarter hours.
fn bounds(from: i64, to: i64, interval: Interval, tz: Tz) -> Vec<i64> {
    let step = interval.tier().bucket_ms();
    let key = |at: i64| {
        let local = tz.timestamp_millis_opt(at).unwrap();
        let (day, hour, minute) = (local.num_days_from_ce(), local.hour(), local.minute());
        match interval {
            Interval::Minute => (day, hour, minute),
            Interval::Hour => (day, hour, 0),
            Interval::Day => (day, 0, 0),
        }
    };
    let mut at = interval.tier().bucket_of(from);
    let mut current = key(at);
    while key(at - step) == current {
        at -= step;
    }
    let mut bounds = vec![at];
    loop {
        at += step;
        let k = key(at);
        if k != current {
            bounds.push(at);
            if at >= to {
                return bounds;
            }
            current = k;
        }
    }
}

/// One bucket of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportBucket {
    /// In the query's zone, with its offset.
    pub start: DateTime<Tz>,
    pub counts: BucketCounts,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub query: AnalyticsQuery,
    pub series: Vec<ReportBucket>,
    pub totals: BucketCounts,
}

impl Report {
    /// Links clicked per message delivered in the range; `None` when none was delivered.
    pub fn click_through_rate(&self) -> Option<f64> {
        let delivered = self.totals.messages_delivered;
        (delivered > 0).then(|| self.totals.unique_clicks as f64 / delivered as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn query(from: &str, to: &str, interval: Option<&str>, tz: &str) -> AnalyticsQuery {
        AnalyticsQuery::parse(Some(from), Some(to), interval, Some(tz), utc(to)).unwrap()
    }

    fn starts(q: &AnalyticsQuery) -> Vec<String> {
        q.report(&[])
            .series
            .iter()
            .map(|b| b.start.to_rfc3339())
            .collect()
    }

    #[test]
    fn hours_in_a_half_hour_zone_start_on_its_own_hours() {
        let q = query(
            "2026-11-27T00:10:00Z",
            "2026-11-27T02:00:00Z",
            Some("hour"),
            "Asia/Kolkata",
        );
        assert_eq!(
            starts(&q),
            [
                "2026-11-27T05:00:00+05:30",
                "2026-11-27T06:00:00+05:30",
                "2026-11-27T07:00:00+05:30"
            ]
        );
        assert_eq!(
            q.reads(),
            (
                Tier::Quarter,
                utc("2026-11-26T23:30:00Z").timestamp_millis(),
                utc("2026-11-27T02:30:00Z").timestamp_millis()
            )
        );
    }

    #[test]
    fn days_start_at_local_midnight_and_follow_daylight_saving() {
        // New York leaves daylight saving on 2026-11-01: that day has 25 hours.
        let q = query(
            "2026-10-31T12:00:00Z",
            "2026-11-02T12:00:00Z",
            Some("day"),
            "America/New_York",
        );
        assert_eq!(
            starts(&q),
            [
                "2026-10-31T00:00:00-04:00",
                "2026-11-01T00:00:00-04:00",
                "2026-11-02T00:00:00-05:00"
            ]
        );
        let (_, first, end) = q.reads();
        assert_eq!(end - first, (24 + 25 + 24) * 3_600_000);
    }

    #[test]
    fn a_45_minute_zone_gets_its_own_midnight() {
        let q = query(
            "2026-11-27T00:00:00Z",
            "2026-11-28T00:00:00Z",
            Some("day"),
            "Asia/Kathmandu",
        );
        assert_eq!(
            starts(&q),
            ["2026-11-27T00:00:00+05:45", "2026-11-28T00:00:00+05:45"]
        );
    }

    #[test]
    fn clicks_land_in_the_bucket_of_their_time_and_sum_into_totals() {
        let q = query("2026-11-27T00:00:00Z", "2026-11-27T03:00:00Z", None, "UTC");
        assert_eq!(q.interval, Interval::Hour);
        let at = |s: &str| utc(s).timestamp_millis();
        let clicks = |n| BucketCounts {
            clicks: n,
            ..BucketCounts::default()
        };
        let report = q.report(&[
            (at("2026-11-27T00:45:00Z"), clicks(1)),
            (at("2026-11-27T02:00:00Z"), clicks(2)),
            (at("2026-11-27T02:15:00Z"), clicks(4)),
            (at("2026-11-27T03:00:00Z"), clicks(100)),
        ]);
        let per_hour: Vec<u64> = report.series.iter().map(|b| b.counts.clicks).collect();
        assert_eq!(per_hour, [1, 0, 6]);
        assert_eq!(report.totals.clicks, 7);
        assert_eq!(report.click_through_rate(), None);
    }

    #[test]
    fn limits_and_defaults() {
        let now = utc("2026-11-27T12:00:00Z");
        let parse =
            |from: Option<&str>, to: Option<&str>, interval: Option<&str>, tz: Option<&str>| {
                AnalyticsQuery::parse(from, to, interval, tz, now).map_err(|e| e.field)
            };
        let q = parse(None, None, None, None).unwrap();
        assert_eq!((q.interval, q.tz, q.to), (Interval::Day, Tz::UTC, now));
        assert_eq!(q.to - q.from, chrono::Duration::days(7));
        assert_eq!(
            parse(Some("2026-11-27T00:00:00Z"), None, Some("minute"), None).map(|q| q.interval),
            Ok(Interval::Minute)
        );
        // Within 48 hours, but more than 1,500 minutes.
        assert_eq!(
            parse(Some("2026-11-25T13:00:00Z"), None, Some("minute"), None).err(),
            Some("interval")
        );
        assert!(
            parse(
                Some("2026-11-25T13:00:00Z"),
                Some("2026-11-25T14:00:00Z"),
                Some("minute"),
                None
            )
            .is_ok()
        );
        assert_eq!(
            parse(Some("2026-11-25T11:00:00Z"), None, Some("minute"), None).err(),
            Some("interval")
        );
        assert_eq!(
            parse(Some("2026-01-01T00:00:00Z"), None, Some("hour"), None).err(),
            Some("interval")
        );
        assert_eq!(
            parse(Some("2026-11-28T00:00:00Z"), None, None, None).err(),
            Some("from")
        );
        assert_eq!(
            parse(Some("yesterday"), None, None, None).err(),
            Some("from")
        );
        assert_eq!(
            parse(None, None, Some("week"), None).err(),
            Some("interval")
        );
        assert_eq!(
            parse(None, None, None, Some("Mars/Olympus")).err(),
            Some("tz")
        );
        // A day range of 1,500 buckets, then one of 1,501 (from is not on a midnight).
        let days_back = |n| (now - chrono::Duration::days(n)).to_rfc3339();
        assert!(parse(Some(&days_back(1_499)), None, Some("day"), None).is_ok());
        assert_eq!(
            parse(Some(&days_back(1_500)), None, Some("day"), None).err(),
            Some("interval")
        );
    }
}
