//! The embedded store: SQLite in WAL mode, one file under `AKTI_DATA_DIR`, for a single
//! process.
//!
//! All writes go through one writer thread that owns the only write connection. It takes
//! every job waiting in its queue, runs each inside its own savepoint (a failed job rolls
//! back alone) and commits them together: group commit, so that many concurrent writers
//! share one fsync. A caller's write is answered only after its transaction committed
//! (`synchronous = FULL`: the data is on disk, not just in the page cache).
//!
//! Reads use a small pool of separate connections; WAL lets them run while the writer
//! commits.
//!
//! The schema is in `SCHEMA`: links, click counters and dedup windows, subscriptions,
//! events and one delivery row per event and subscription, leased to the dispatcher while
//! an attempt runs.

mod events;
mod links;
mod messages;
mod retention;
mod webhooks;

use super::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Most jobs committed in one transaction; bounds the latency a large batch adds to the
/// jobs queued behind it.
const MAX_JOBS_PER_COMMIT: usize = 512;
/// Most reads at once, and so most read connections: each holds a page cache, and each read
/// a blocking thread with its own allocator heap, so an unbounded number under load would
/// take memory the process keeps after the burst.
const MAX_READERS: usize = 8;
/// How many times a generated code is redrawn after a collision before we give up. With
/// 62^8 codes a single collision is already rare.
pub(super) const CODE_ATTEMPTS: usize = 10;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS links (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    code             TEXT    NOT NULL UNIQUE,
    campaign_id      TEXT    NOT NULL,
    phone            TEXT    NOT NULL,  -- '' for a link without a lead
    external_lead_id TEXT,
    url              TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,  -- unix milliseconds
    expires_at       INTEGER,
    disabled         INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS links_identity ON links (campaign_id, phone, url);
-- Lists go by creation time, then code, as the cursor says (`store::Position`).
DROP INDEX IF EXISTS links_by_campaign;
DROP INDEX IF EXISTS links_by_phone;
CREATE INDEX IF NOT EXISTS links_in_order ON links (created_at, code);
CREATE INDEX IF NOT EXISTS links_of_campaign_in_order ON links (campaign_id, created_at, code);
CREATE INDEX IF NOT EXISTS links_of_phone_in_order ON links (phone, created_at, code);

-- A lead's open dedup window: the click time that opened it, in ms, and that click's
-- event, so that the same click written again finds its own window.
CREATE TABLE IF NOT EXISTS windows (
    code       TEXT    PRIMARY KEY,
    opened_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    event_id   TEXT    NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS link_stats (
    code            TEXT    PRIMARY KEY,
    clicks          INTEGER NOT NULL DEFAULT 0,
    click_events    INTEGER NOT NULL DEFAULT 0,
    bot_clicks      INTEGER NOT NULL DEFAULT 0,
    last_clicked_at INTEGER
);
CREATE TABLE IF NOT EXISTS campaign_stats (
    campaign_id        TEXT    PRIMARY KEY,
    clicks             INTEGER NOT NULL DEFAULT 0,
    click_events       INTEGER NOT NULL DEFAULT 0,
    bot_clicks         INTEGER NOT NULL DEFAULT 0,
    last_clicked_at    INTEGER,
    messages_sent      INTEGER NOT NULL DEFAULT 0,
    messages_delivered INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS subscriptions (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT    NOT NULL UNIQUE,
    url          TEXT    NOT NULL,
    event_types  TEXT,              -- JSON array; NULL for every type
    campaign_ids TEXT,              -- JSON array; NULL for every campaign
    description  TEXT,
    secret       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    disabled     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS subscriptions_in_order ON subscriptions (created_at, id);
CREATE TABLE IF NOT EXISTS events (
    id          TEXT    PRIMARY KEY,
    event_type  TEXT    NOT NULL,
    campaign_id TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
-- One row per event and matching subscription. Due when pending, next_attempt_at has
-- passed and no live lease holds it.
CREATE TABLE IF NOT EXISTS deliveries (
    sub_id          TEXT    NOT NULL,
    event_id        TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    status          TEXT    NOT NULL,   -- pending | delivered | failed
    attempts        TEXT    NOT NULL DEFAULT '[]',
    next_attempt_at INTEGER,
    lease_until     INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (sub_id, event_id)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_log ON deliveries (sub_id, created_at, event_id);
-- Messages, kept until expires_at (AKTI_MESSAGE_TTL) for late status reports.
CREATE TABLE IF NOT EXISTS messages (
    id               TEXT    PRIMARY KEY,
    campaign_id      TEXT    NOT NULL,
    phone            TEXT    NOT NULL,
    external_lead_id TEXT,
    original         TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    links            TEXT    NOT NULL,  -- JSON array of {url, shortUrl, code}
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL
);
-- Counts batches already added, so that one written again adds nothing.
CREATE TABLE IF NOT EXISTS applied_batches (
    id         TEXT    PRIMARY KEY,
    applied_at INTEGER NOT NULL
);
-- The first report of each status of a message.
CREATE TABLE IF NOT EXISTS message_statuses (
    message_id  TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    reported_at INTEGER NOT NULL,
    PRIMARY KEY (message_id, status)
);
";

pub(super) const LINK_COLUMNS: &str =
    "code, campaign_id, phone, external_lead_id, url, created_at, expires_at, disabled";

/// A failure inside SQLite, kept as text so that one commit error can be reported to every
/// job of the batch.
#[derive(Debug, thiserror::Error)]
#[error("sqlite: {0}")]
struct SqliteFailure(String);

pub(super) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::unavailable(SqliteFailure(e.to_string()))
}

/// Called after the batch's commit with its outcome; delivers the job's result.
type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A unit of work for the writer thread; says whether it failed (its savepoint is then
/// rolled back) and how to answer its caller.
type Job = Box<dyn FnOnce(&Connection) -> (bool, Completion) + Send>;

pub struct EmbeddedStore {
    jobs: mpsc::Sender<Job>,
    path: PathBuf,
    /// Idle read connections. A std mutex: it is held only to push or pop, never across an
    /// await.
    readers: Arc<Mutex<Vec<Connection>>>,
    /// A permit per read in flight, [`MAX_READERS`] in all.
    reading: Arc<tokio::sync::Semaphore>,
    /// Wakes the dispatcher when a delivery becomes due now.
    pub(super) due: Arc<tokio::sync::Notify>,
}

/// Runs `f` on the writer thread behind `jobs` inside the next group commit; answers after
/// the commit.
async fn write_with<T: Send + 'static>(
    jobs: &mpsc::Sender<Job>,
    f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move |conn| {
        let result = f(conn);
        let failed = result.is_err();
        let done: Completion = Box::new(move |commit| {
            let _ = tx.send(commit.map_err(unavailable).and(result));
        });
        (failed, done)
    });
    let stopped = || unavailable("the writer thread has stopped");
    jobs.send(job).await.map_err(|_| stopped())?;
    rx.await.map_err(|_| stopped())?
}

impl EmbeddedStore {
    /// Opens (creating if needed) `<data_dir>/akti-link.sqlite3` and starts the writer, and
    /// (inside a Tokio runtime) the sweep that drops events and deliveries older than
    /// `retention`.
    pub fn open(data_dir: &Path, retention: Duration) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(unavailable)?;
        let path = data_dir.join("akti-link.sqlite3");
        let writer = open_connection(&path)?;
        writer.execute_batch(SCHEMA).map_err(unavailable)?;
        migrate(&writer)?;
        // One process owns this file: any lease found now was held by a process that died
        // mid-attempt, and its deliveries are due again at once.
        writer
            .execute(
                "UPDATE deliveries SET lease_until = 0 WHERE lease_until > 0",
                [],
            )
            .map_err(unavailable)?;
        let (jobs, queue) = mpsc::channel::<Job>(4096);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run_writer(writer, queue))
            .map_err(unavailable)?;
        retention::sweep_every_while_open(jobs.downgrade(), retention);
        Ok(Self {
            jobs,
            path,
            readers: Arc::default(),
            reading: Arc::new(tokio::sync::Semaphore::new(MAX_READERS)),
            due: Arc::default(),
        })
    }

    /// Runs `f` on the writer thread inside the next group commit; answers after the commit.
    pub(super) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        write_with(&self.jobs, f).await
    }

    /// Runs `f` on a pooled read connection in a blocking thread.
    pub(super) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let permit = (self.reading.clone().acquire_owned())
            .await
            .map_err(|_| unavailable("the store is closed"))?;
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => open_connection(&path)?,
            };
            let result = f(&conn);
            let mut idle = readers.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < MAX_READERS {
                idle.push(conn);
            }
            // Only now: the next read finds this connection in the pool.
            drop((idle, permit));
            result
        })
        .await
        .map_err(unavailable)?
    }
}

/// Brings a file written by an earlier version up to `SCHEMA`.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let has_event_id: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM pragma_table_info('windows') WHERE name = 'event_id'",
            [],
            |r| r.get(0),
        )
        .map_err(unavailable)?;
    if !has_event_id {
        conn.execute_batch("ALTER TABLE windows ADD COLUMN event_id TEXT NOT NULL DEFAULT ''")
            .map_err(unavailable)?;
    }
    Ok(())
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(unavailable)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;",
    )
    .map_err(unavailable)?;
    Ok(conn)
}

/// The writer thread: one transaction per batch of queued jobs, one savepoint per job.
fn run_writer(conn: Connection, mut queue: mpsc::Receiver<Job>) {
    while let Some(first) = queue.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_JOBS_PER_COMMIT {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut completions = Vec::with_capacity(batch.len());
        let begun = conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| e.to_string());
        if let Err(e) = begun {
            // Every caller in this batch learns that nothing was written.
            drop(batch);
            tracing::error!(error = %e, "embedded store could not begin a transaction");
            continue;
        }
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
        let committed = conn.execute_batch("COMMIT").map_err(|e| e.to_string());
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for done in completions {
            done(committed.clone());
        }
    }
}
