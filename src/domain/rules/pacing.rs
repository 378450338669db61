//! Paced webhooks: how many send slots a rate-limited subscription gets.

/// The window over which a subscription's `rateLimit` counts its deliveries: never more
/// than the limit are handed a send slot within any such window, over all instances. A
/// tenth longer than the second the limit is given for: a delivery leaves some
/// milliseconds after its slot was taken (and some later than others), and the margin
/// keeps what arrives at the subscriber within the limit in any second.
pub const RATE_WINDOW_MS: i64 = 1100;

/// What a request for send slots got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotGrant {
    pub granted: u32,
    /// When fewer were granted than asked: how long (ms) until the oldest slot of the
    /// window frees; 0 otherwise.
    pub next_free_in: i64,
}

/// Hands out up to `wanted` send slots at `now` (ms) for a subscription limited to `rate`
/// a window, given `taken`, the times of the slots handed out before (oldest first, the
/// order they were taken), which it prunes and adds to. `lua/take_slots.lua` does the
/// same in Redis, on Redis' clock.
pub fn take_slots(
    taken: &mut std::collections::VecDeque<i64>,
    now: i64,
    rate: u32,
    wanted: u32,
) -> SlotGrant {
    while taken.front().is_some_and(|&at| at <= now - RATE_WINDOW_MS) {
        taken.pop_front();
    }
    let free = (rate as usize).saturating_sub(taken.len());
    let granted = free.min(wanted as usize);
    taken.extend(std::iter::repeat_n(now, granted));
    let next_free_in = match taken.front() {
        Some(&oldest) if granted < wanted as usize => oldest + RATE_WINDOW_MS - now,
        _ => 0,
    };
    SlotGrant {
        granted: granted as u32,
        next_free_in,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_window_holds_more_slots_than_the_rate() {
        const W: i64 = RATE_WINDOW_MS;
        let mut taken = std::collections::VecDeque::new();
        assert_eq!(
            take_slots(&mut taken, 1_000, 50, 30),
            SlotGrant {
                granted: 30,
                next_free_in: 0
            }
        );
        assert_eq!(
            take_slots(&mut taken, 1_400, 50, 30),
            SlotGrant {
                granted: 20,
                next_free_in: W - 400
            }
        );
        // Full until the first 30 leave the window.
        assert_eq!(take_slots(&mut taken, 1_000 + W - 1, 50, 5).granted, 0);
        assert_eq!(
            take_slots(&mut taken, 1_000 + W, 50, 40),
            SlotGrant {
                granted: 30,
                next_free_in: 400
            }
        );
        // A lower limit (a PATCH) grants nothing until the window is below it.
        assert_eq!(take_slots(&mut taken, 1_100 + W, 10, 1).granted, 0);
        assert_eq!(take_slots(&mut taken, 1_000 + 2 * W, 10, 20).granted, 10);
        // Over any run, every window of a second holds at most the rate.
        let mut taken = std::collections::VecDeque::new();
        let mut log = Vec::new();
        for now in (0..10_000).step_by(7) {
            let grant = take_slots(&mut taken, now, 50, 3);
            log.extend(std::iter::repeat_n(now, grant.granted as usize));
        }
        for (i, &start) in log.iter().enumerate() {
            let within = log[i..]
                .iter()
                .take_while(|&&t| t < start + RATE_WINDOW_MS)
                .count();
            assert!(within <= 50, "{within} slots in the window from {start}");
        }
        assert!(
            log.len() >= 450,
            "the rate is used: {} slots in 10 s",
            log.len()
        );
    }
}
