//! The writer thread: the only write connection, committing every queued job in one
//! transaction (group commit), each job in its own savepoint so that a failed job rolls
//! back alone. A job is answered only after its transaction committed (`synchronous =
//! FULL`: on disk, not just in the page cache), so many concurrent writers share one fsync.
//!
//! Jobs come in two queues. The foreground queue holds what a request waits for (a
//! redirect's click, an API write); the background queue the dispatcher's leases and
//! outcomes and the retention sweep. While foreground jobs wait, a commit takes one
//! background job beside them: in a burst the redirects' clicks are not queued behind
//! the deliveries they cause, and the deliveries still move (their leases must be
//! written back before they lapse).

use super::sqlite_error;
use crate::store::StoreError;
use rusqlite::Connection;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most jobs committed in one transaction; bounds the latency a large batch adds to the
/// jobs queued behind it.
const MAX_JOBS_PER_COMMIT: usize = 512;
/// Jobs waiting for the writer, in each queue, before writers wait for room.
pub(super) const QUEUE: usize = 4096;
/// Background jobs in a commit that also holds foreground jobs.
const BACKGROUND_BESIDE_FOREGROUND: usize = 1;

/// How a batch's commit went, told to every job of it.
type Commit = Result<(), Arc<rusqlite::Error>>;
/// Called after the batch's commit with its outcome; answers the job's caller.
type Completion = Box<dyn FnOnce(Commit) + Send>;
/// A unit of work for the writer thread; says whether it failed (its savepoint is then
/// rolled back) and how to answer its caller.
pub(super) type Job = Box<dyn FnOnce(&Connection) -> (bool, Completion) + Send>;

/// Runs `f` on the writer thread behind `jobs` inside the next group commit; answers after
/// the commit.
pub(super) async fn write_with<T: Send + 'static>(
    jobs: &mpsc::Sender<Job>,
    f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move |conn| {
        let result = f(conn);
        let failed = result.is_err();
        let done: Completion = Box::new(move |commit| {
            let answer = commit.map_err(|e| sqlite_error(&e)).and(result);
            let _ = tx.send(answer);
        });
        (failed, done)
    });
    let stopped =
        || StoreError::unavailable(std::io::Error::other("the writer thread has stopped"));
    jobs.send(job).await.map_err(|_| stopped())?;
    rx.await.map_err(|_| stopped())?
}

/// One transaction per batch of queued jobs, one savepoint per job, until every sender of
/// both queues is gone.
pub(super) fn run(
    conn: Connection,
    mut foreground: mpsc::Receiver<Job>,
    mut background: mpsc::Receiver<Job>,
) {
    while let Some(batch) = next_batch(&mut foreground, &mut background) {
        commit(&conn, batch);
    }
}

/// Waits for a job, then takes what else waits: every foreground job (up to the most per
/// commit), then background jobs, up to [`BACKGROUND_BESIDE_FOREGROUND`] if the commit
/// holds foreground jobs, else to fill it.
fn next_batch(
    foreground: &mut mpsc::Receiver<Job>,
    background: &mut mpsc::Receiver<Job>,
) -> Option<Vec<Job>> {
    let (job, is_foreground) = futures::executor::block_on(async {
        tokio::select! {
            biased;
            Some(job) = foreground.recv() => Some((job, true)),
            Some(job) = background.recv() => Some((job, false)),
            else => None,
        }
    })?;
    let mut batch = vec![job];
    let mut foregrounds = usize::from(is_foreground);
    let mut backgrounds = 1 - foregrounds;
    while batch.len() < MAX_JOBS_PER_COMMIT {
        match foreground.try_recv() {
            Ok(job) => {
                batch.push(job);
                foregrounds += 1;
            }
            Err(_) => break,
        }
    }
    while batch.len() < MAX_JOBS_PER_COMMIT
        && (foregrounds == 0 || backgrounds < BACKGROUND_BESIDE_FOREGROUND)
    {
        match background.try_recv() {
            Ok(job) => {
                batch.push(job);
                backgrounds += 1;
            }
            Err(_) => break,
        }
    }
    Some(batch)
}

/// The batch in one transaction, each job in its own savepoint; answers every job after.
fn commit(conn: &Connection, batch: Vec<Job>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        // Every caller in this batch learns that nothing was written (its answer is
        // dropped: `Unavailable`).
        tracing::error!(error = %e, "embedded store could not begin a transaction");
        return;
    }
    let mut completions = Vec::with_capacity(batch.len());
    for job in batch {
        let _ = conn.execute_batch("SAVEPOINT job");
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(conn)));
        match outcome {
            Ok((failed, done)) => {
                if failed {
                    let _ = conn.execute_batch("ROLLBACK TO job");
                }
                completions.push(done);
            }
            // The caller's sender is dropped with the job: it sees `Unavailable`.
            Err(_) => {
                let _ = conn.execute_batch("ROLLBACK TO job");
            }
        }
        let _ = conn.execute_batch("RELEASE job");
    }
    let committed = conn.execute_batch("COMMIT").map_err(Arc::new);
    if committed.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for done in completions {
        done(committed.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A job that writes nothing and notes its name in `ran`.
    fn job(name: &'static str, ran: &Arc<Mutex<Vec<&'static str>>>) -> Job {
        let ran = ran.clone();
        Box::new(move |_| {
            ran.lock().unwrap().push(name);
            (false, Box::new(|_| {}))
        })
    }

    fn names(batch: Vec<Job>, ran: &Arc<Mutex<Vec<&'static str>>>) -> Vec<&'static str> {
        let conn = Connection::open_in_memory().unwrap();
        for job in batch {
            let (_failed, done) = job(&conn);
            done(Ok(()));
        }
        std::mem::take(&mut *ran.lock().unwrap())
    }

    #[test]
    fn foreground_jobs_take_a_commit_with_one_background_job_and_background_jobs_fill_the_rest() {
        let ran = Arc::default();
        let (foreground_tx, mut foreground) = mpsc::channel(16);
        let (background_tx, mut background) = mpsc::channel(16);
        for name in ["lease", "outcomes", "sweep"] {
            background_tx.try_send(job(name, &ran)).ok().unwrap();
        }
        for name in ["click 1", "click 2"] {
            foreground_tx.try_send(job(name, &ran)).ok().unwrap();
        }
        let batch = next_batch(&mut foreground, &mut background).unwrap();
        assert_eq!(names(batch, &ran), ["click 1", "click 2", "lease"]);
        let batch = next_batch(&mut foreground, &mut background).unwrap();
        assert_eq!(names(batch, &ran), ["outcomes", "sweep"]);
        drop((foreground_tx, background_tx));
        assert!(next_batch(&mut foreground, &mut background).is_none());
    }
}
