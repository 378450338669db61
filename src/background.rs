//! A runtime of lower priority for work that must not take the core from redirects.
//!
//! The dispatcher sends deliveries as fast as the store hands them out. When the service
//! and its store share cores with a burst of clicks, every attempt it makes is time a
//! redirect waits for (`bench/NOTES.md`: the campaign burst). Its threads therefore run
//! [`LOWER_BY`] nice levels below the thread that starts them: when the cores are busy the
//! kernel gives them about a tenth of the time the redirect's workers get, and when they
//! are idle it gives them all of it. Deliveries wait in the store meanwhile, durable,
//! and are sent once the burst eases.

use std::future::Future;
use tokio::runtime::{Builder, Runtime};

/// How many nice levels the background threads are below the service's (each level is a
/// weight about 1.25 times smaller; 19 is the lowest priority).
pub const LOWER_BY: i32 = 10;
const LOWEST: i32 = 19;

/// A runtime whose threads have a lower priority (on Linux; elsewhere the usual one).
pub struct Background {
    /// Always `Some` but in `drop`, which needs to own it.
    runtime: Option<Runtime>,
}

impl Background {
    /// Makes the runtime, with `name`d threads; runs nothing yet.
    pub fn new(name: &str) -> std::io::Result<Self> {
        let nice = background_nice();
        let runtime = Builder::new_multi_thread()
            .thread_name(name)
            .on_thread_start(move || set_this_threads_nice(nice))
            .enable_all()
            .build()?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// Runs `work` there until it ends; the runtime stops when this is dropped. `work` is
    /// first polled there, so whatever it spawns or connects lives there too.
    pub async fn run(self, work: impl Future<Output = ()> + Send + 'static) {
        let Some(runtime) = &self.runtime else { return };
        if let Err(e) = runtime.spawn(work).await {
            tracing::error!(error = %e, "background work ended abnormally");
        }
    }
}

impl Drop for Background {
    /// Stops the runtime without waiting for its blocking threads, which dropping it would
    /// do: it is dropped in an async context, where waiting is not allowed.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The nice value for background threads: [`LOWER_BY`] below the calling thread's.
fn background_nice() -> i32 {
    #[cfg(target_os = "linux")]
    let ours = rustix::process::getpriority_process(None).unwrap_or(0);
    #[cfg(not(target_os = "linux"))]
    let ours = 0;
    (ours + LOWER_BY).min(LOWEST)
}

/// On Linux the nice value belongs to each thread (`setpriority` with a thread id), and a
/// thread inherits it from the thread that starts it.
fn set_this_threads_nice(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        let thread = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(thread), nice) {
            tracing::debug!(error = %e, "cannot lower the priority of a background thread");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_work_runs_at_the_lower_priority_and_the_caller_keeps_its_own() {
        let ours = rustix::process::getpriority_process(None).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let background = Background::new("test-background").unwrap();
        background
            .run(async move {
                let thread = rustix::thread::gettid();
                let _ = tx.send(rustix::process::getpriority_process(Some(thread)).unwrap());
            })
            .await;
        assert_eq!(rx.await.unwrap(), (ours + LOWER_BY).min(LOWEST));
        assert_eq!(rustix::process::getpriority_process(None).unwrap(), ours);
    }
}
