//! Whether the store is answering right now, as the redirect path sees it.
//!
//! A store that is down answers at once (connection refused); one that is frozen (a long
//! fork, a swap storm, a network black hole) answers nothing until its response timeout.
//! Redirects must not wait that long, so whoever sees the store slow or failing says so
//! here, and for [`REMEMBERED`] after that the redirect cache serves cached links without
//! asking and the click recorder buffers clicks instead of writing them (the contract's
//! outage rule). Any answer from the store clears it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a store call may take before the redirect path stops waiting for it. A batch
/// of 512 lead clicks takes Redis a few tens of milliseconds.
pub const STALL_AFTER: Duration = Duration::from_millis(300);
/// How long one sign of a stall is believed without another.
pub const REMEMBERED: Duration = Duration::from_secs(1);

pub struct StoreHealth {
    origin: Instant,
    /// When the store last looked stalled: ms since `origin` plus one; 0 when it answers.
    stalled_at: AtomicU64,
}

impl Default for StoreHealth {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            stalled_at: AtomicU64::new(0),
        }
    }
}

impl StoreHealth {
    fn now(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64 + 1
    }

    /// A store call failed or has taken longer than [`STALL_AFTER`].
    pub fn stalled(&self) {
        self.stalled_at.store(self.now(), Ordering::Release);
    }

    /// The store answered.
    pub fn answered(&self) {
        self.stalled_at.store(0, Ordering::Release);
    }

    /// Whether the store looked stalled less than [`REMEMBERED`] ago.
    pub fn is_stalled(&self) -> bool {
        match self.stalled_at.load(Ordering::Acquire) {
            0 => false,
            at => self.now().saturating_sub(at) <= REMEMBERED.as_millis() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_is_believed_until_an_answer_or_for_a_moment() {
        let health = StoreHealth::default();
        assert!(!health.is_stalled());
        health.stalled();
        assert!(health.is_stalled());
        health.answered();
        assert!(!health.is_stalled());
        let long_ago = StoreHealth {
            origin: Instant::now() - REMEMBERED * 2,
            stalled_at: AtomicU64::new(1),
        };
        assert!(!long_ago.is_stalled(), "an old sign is forgotten");
    }
}
