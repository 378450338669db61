//! The open connections of one listener, so that a new connection at the cap can displace
//! the quietest one.
//!
//! Finding the very quietest would mean ordering connections on every request; instead a
//! few are sampled at random and the quietest of them goes (Redis evicts keys the same way).
//! Under a flood of idle or half-sent connections nearly every sample is one of them.

use super::connection::Activity;
use slab::Slab;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Connections looked at for each one displaced.
const SAMPLE: usize = 16;
/// A connection quiet for less than this is never displaced: it may be about to send its
/// request, or still be flushing its last response.
const MIN_QUIET: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Registry {
    /// A std mutex: held to insert, remove or sample, never across an await.
    open: Mutex<Slab<Arc<Activity>>>,
}

impl Registry {
    pub fn insert(&self, activity: Arc<Activity>) -> usize {
        self.lock().insert(activity)
    }

    pub fn remove(&self, slot: usize) {
        self.lock().try_remove(slot);
    }

    /// Tells the quietest of a sample of connections to close; `false` when none of them
    /// may be displaced (every one is busy or was active a moment ago).
    pub fn displace_quietest(&self) -> bool {
        let open = self.lock();
        let slots = open.capacity();
        if slots == 0 {
            return false;
        }
        let quietest = (0..SAMPLE)
            .filter_map(|_| open.get(fastrand::usize(..slots)))
            .filter_map(|activity| Some((activity.quiet_for()?, activity)))
            .filter(|(quiet, _)| *quiet >= MIN_QUIET)
            .max_by_key(|(quiet, _)| *quiet);
        match quietest {
            Some((_, activity)) => {
                activity.displace();
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slab<Arc<Activity>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}
