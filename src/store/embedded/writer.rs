//! The writer thread: the only write connection, committing every queued job in one
//! transaction (group commit), each job in its own savepoint so that a failed job rolls
//! back alone. A job is answered only after its transaction committed (`synchronous =
//! FULL`: on disk, not just in the page cache), so many concurrent writers share one fsync.

use super::sqlite_error;
use crate::store::StoreError;
use rusqlite::Connection;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most jobs committed in one transaction; bounds the latency a large batch adds to the
/// jobs queued behind it.
const MAX_JOBS_PER_COMMIT: usize = 512;
/// Jobs waiting for the writer before writers wait for room.
pub(super) const QUEUE: usize = 4096;

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

/// One transaction per batch of queued jobs, one savepoint per job, until every sender is
/// gone.
pub(super) fn run(conn: Connection, mut queue: mpsc::Receiver<Job>) {
    while let Some(first) = queue.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_JOBS_PER_COMMIT {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            // Every caller in this batch learns that nothing was written (its answer is
            // dropped: `Unavailable`).
            tracing::error!(error = %e, "embedded store could not begin a transaction");
            continue;
        }
        let mut completions = Vec::with_capacity(batch.len());
        for job in batch {
            let _ = conn.execute_batch("SAVEPOINT job");
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&conn)));
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
}
