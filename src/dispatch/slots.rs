//! A subscription's share of one dispatcher: its attempts in flight, the deliveries
//! waiting for one, and when a delivery that finds both full is looked at again.

use super::{PER_SUBSCRIPTION, QUEUED_PER_SUBSCRIPTION};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The soonest a delivery put back is looked at again.
pub(super) const DEFER: Duration = Duration::from_millis(200);
/// The latest: a subscriber that recovers is reached within this, whatever its backlog.
const MAX_DEFER: Duration = Duration::from_secs(300);

pub struct Slots {
    pub in_flight: Arc<Semaphore>,
    pub waiting: AtomicUsize,
    /// A std mutex: held to read or update two numbers, never across an await.
    pace: Mutex<Pace>,
}

impl Slots {
    pub fn new() -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(PER_SUBSCRIPTION)),
            waiting: AtomicUsize::new(0),
            pace: Mutex::new(Pace {
                mean_attempt: Duration::ZERO,
                last_turn: Instant::now(),
            }),
        }
    }

    pub fn record_attempt(&self, took: Duration) {
        self.pace().record(took);
    }

    /// How long a delivery put back now waits before it is looked at again.
    pub fn put_back(&self) -> Duration {
        let now = Instant::now();
        self.pace().turn(now) - now
    }

    fn pace(&self) -> std::sync::MutexGuard<'_, Pace> {
        self.pace.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// When this subscription will have room. A delivery put back is given its turn: after
/// what is in flight and waiting, and after the deliveries put back before it, each
/// taking the subscription's recent attempt time over its slots. A subscriber that
/// answers in a second then has its backlog read again about once, when it can be sent,
/// instead of every [`DEFER`] (13,000 waiting meant some 65,000 reads and writes back a
/// second, a third of Redis' time in `bench/burst.py`'s measurement).
struct Pace {
    /// A moving mean of the subscription's attempts.
    mean_attempt: Duration,
    /// The turn given to the last delivery put back.
    last_turn: Instant,
}

impl Pace {
    fn record(&mut self, took: Duration) {
        self.mean_attempt = (self.mean_attempt * 7 + took) / 8;
    }

    fn turn(&mut self, now: Instant) -> Instant {
        let each = self.mean_attempt / PER_SUBSCRIPTION as u32;
        let ahead = each * (PER_SUBSCRIPTION + QUEUED_PER_SUBSCRIPTION) as u32;
        let turn = (self.last_turn + each)
            .max(now + ahead.max(DEFER))
            .min(now + MAX_DEFER);
        self.last_turn = turn;
        turn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pace_of(attempt: Duration, now: Instant) -> Pace {
        let mut pace = Pace {
            mean_attempt: Duration::ZERO,
            last_turn: now,
        };
        for _ in 0..200 {
            pace.record(attempt);
        }
        pace
    }

    #[test]
    fn a_fast_subscriber_is_looked_at_again_after_a_moment() {
        let now = Instant::now();
        let mut pace = pace_of(Duration::from_millis(2), now);
        let last = (0..1_000).map(|_| pace.turn(now)).last().unwrap();
        assert!(
            last - now < DEFER + Duration::from_millis(50),
            "{:?}",
            last - now
        );
    }

    #[test]
    fn a_slow_subscribers_backlog_is_spread_over_when_it_can_be_sent() {
        let now = Instant::now();
        let mut pace = pace_of(Duration::from_secs(1), now);
        let turns: Vec<Duration> = (0..6_400).map(|_| pace.turn(now) - now).collect();
        // 64 in flight and 128 waiting take three seconds; then 64 a second.
        let first = turns[0].as_secs_f64();
        assert!((2.9..3.1).contains(&first), "{first}");
        let last = turns[6_399].as_secs_f64();
        assert!((102.0..104.0).contains(&last), "{last}");
        assert!(turns.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn no_delivery_is_put_back_for_longer_than_the_cap() {
        let now = Instant::now();
        let mut pace = pace_of(Duration::from_secs(15), now);
        let last = (0..100_000).map(|_| pace.turn(now)).last().unwrap();
        assert_eq!(last - now, MAX_DEFER);
    }

    #[test]
    fn the_pace_follows_the_subscribers_recent_attempts() {
        let now = Instant::now();
        let mut pace = pace_of(Duration::from_secs(1), now);
        for _ in 0..200 {
            pace.record(Duration::from_millis(1));
        }
        assert!(pace.mean_attempt < Duration::from_millis(2));
    }
}
