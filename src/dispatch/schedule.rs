//! When to try a failed delivery again.

use std::time::Duration;

/// The longest `Retry-After` we honour; a subscriber cannot park a delivery for longer.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// `AKTI_WEBHOOK_RETRY_SCHEDULE`: N delays, so at most N + 1 attempts.
#[derive(Debug, Clone)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

impl RetrySchedule {
    pub fn new(delays: Vec<Duration>) -> Self {
        Self { delays }
    }

    /// The wait before the next attempt, after `attempts_made` attempts have failed; `None`
    /// when that was the last. Each delay gets ±10% jitter so that a subscriber coming back
    /// from an outage is not hit by every retry at once; a `Retry-After` longer than the
    /// schedule is honoured, up to a day.
    pub fn next_delay(
        &self,
        attempts_made: u32,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let base = *self.delays.get((attempts_made as usize).checked_sub(1)?)?;
        let jitter = 0.9 + fastrand::f64() * 0.2;
        let delay = base.mul_f64(jitter);
        Some(match retry_after {
            Some(asked) => delay.max(asked.min(MAX_RETRY_AFTER)),
            None => delay,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n_delays_allow_n_plus_one_attempts() {
        let s = RetrySchedule::new(vec![Duration::from_secs(10), Duration::from_secs(100)]);
        let first = s.next_delay(1, None).unwrap();
        assert!((9_000..=11_000).contains(&first.as_millis()), "{first:?}");
        let second = s.next_delay(2, None).unwrap();
        assert!(
            (90_000..=110_000).contains(&second.as_millis()),
            "{second:?}"
        );
        assert_eq!(s.next_delay(3, None), None);
        assert_eq!(RetrySchedule::new(vec![]).next_delay(1, None), None);
    }

    #[test]
    fn retry_after_is_honoured_within_a_day() {
        let s = RetrySchedule::new(vec![Duration::from_secs(1)]);
        assert_eq!(
            s.next_delay(1, Some(Duration::from_secs(60))),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            s.next_delay(1, Some(Duration::from_secs(10 * 86_400))),
            Some(MAX_RETRY_AFTER)
        );
        assert!(s.next_delay(1, Some(Duration::ZERO)).unwrap() >= Duration::from_millis(900));
    }
}
