//! The embedded store: SQLite in WAL mode, one file under `AKTI_DATA_DIR`, for a single
//! process. The schema is `schema.sql`.
//!
//! All writes go through one writer thread ([`writer`]): group commit. Reads use a small
//! pool of separate connections; WAL lets them run while the writer commits.

mod campaigns;
mod clicks;
mod leads;
mod links;
mod messages;
mod outbox;
mod retention;
mod series;
mod subscriptions;
mod writer;

use super::{Store, StoreError};
use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use writer::Job;

const SCHEMA: &str = include_str!("schema.sql");
/// Most reads at once, and so most read connections: each holds a page cache, and each read
/// a blocking thread with its own allocator heap, so an unbounded number under load would
/// take memory the process keeps after the burst.
const MAX_READERS: usize = 8;
/// The writer's page cache, in KiB (SQLite's default is 2 MiB). Every click and delivery
/// touches the indexes of windows, deliveries and counters; with the default, in a burst
/// on a campaign of 200,000 links the writer (the redirects' limit) spent a third of its
/// time reading and writing pages through the kernel (`bench/NOTES.md`).
const WRITER_CACHE_KIB: usize = 64 * 1024;
/// Pages the WAL may hold before the writer copies them into the database (SQLite's
/// default is 1,000).
const CHECKPOINT_PAGES: usize = 10_000;

pub struct EmbeddedStore {
    /// The writer's queue of what requests wait for, and its background queue
    /// ([`writer`]).
    jobs: mpsc::Sender<Job>,
    background_jobs: mpsc::Sender<Job>,
    path: PathBuf,
    /// Idle read connections. A std mutex: it is held only to push or pop, never across an
    /// await.
    readers: Arc<Mutex<Vec<Connection>>>,
    /// A permit per read in flight, [`MAX_READERS`] in all.
    reading: Arc<tokio::sync::Semaphore>,
    /// Wakes the dispatcher when a delivery becomes due now.
    due: Arc<tokio::sync::Notify>,
    /// The send slots of rate-limited subscriptions taken in the last second: in memory,
    /// as one process is all that sends from this store.
    send_slots: Arc<Mutex<SendSlots>>,
}

type SendSlots =
    std::collections::HashMap<crate::domain::SubscriptionId, std::collections::VecDeque<i64>>;

impl EmbeddedStore {
    /// Opens (creating if needed) `<data_dir>/akti-link.sqlite3` and starts the writer, and
    /// (inside a Tokio runtime) the sweep that drops what has outlived `retention`.
    pub fn open(data_dir: &Path, retention: Duration) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(StoreError::unavailable)?;
        let path = data_dir.join("akti-link.sqlite3");
        let writer = open_connection(&path)?;
        writer
            .execute_batch(&format!(
                "PRAGMA cache_size = -{WRITER_CACHE_KIB}; PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES};"
            ))
            .map_err(|e| sqlite_error(&e))?;
        writer.execute_batch(SCHEMA).map_err(|e| sqlite_error(&e))?;
        migrate(&writer)?;
        // One process owns this file: any lease found now was held by a process that died
        // mid-attempt, and its deliveries are due again at once.
        (writer.execute(
            "UPDATE deliveries SET lease_until = 0 WHERE lease_until > 0",
            [],
        ))
        .map_err(|e| sqlite_error(&e))?;
        let (jobs, queue) = mpsc::channel::<Job>(writer::QUEUE);
        let (background_jobs, background_queue) = mpsc::channel::<Job>(writer::QUEUE);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer::run(writer, queue, background_queue))
            .map_err(StoreError::unavailable)?;
        retention::sweep_every_while_open(background_jobs.downgrade(), retention);
        Ok(Self {
            jobs,
            background_jobs,
            path,
            readers: Arc::default(),
            reading: Arc::new(tokio::sync::Semaphore::new(MAX_READERS)),
            due: Arc::default(),
            send_slots: Arc::default(),
        })
    }

    /// Runs `f` on the writer thread inside the next group commit; answers after the commit.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        writer::write_with(&self.jobs, f).await
    }

    /// [`Self::write`] for work no request waits for: it gives way to the writes that
    /// requests wait for.
    async fn write_in_background<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        writer::write_with(&self.background_jobs, f).await
    }

    /// Runs `f` on a pooled read connection in a blocking thread.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let permit = (self.reading.clone().acquire_owned())
            .await
            .map_err(StoreError::unavailable)?;
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
        .map_err(StoreError::bug)?
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(|e| sqlite_error(&e))
        })
        .await
    }
}

/// SQLite out of reach (busy, locked, out of disk, unable to open) is `Unavailable`; a
/// damaged file or a value we cannot read is `Corrupt`; anything else (a constraint we did
/// not expect, a wrong statement) is a bug of ours.
fn sqlite_error(e: &rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    let described = || e.to_string();
    match e {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::CannotOpen
            | ErrorCode::OutOfMemory
            | ErrorCode::ReadOnly
            | ErrorCode::FileLockingProtocolFailed => {
                StoreError::unavailable(std::io::Error::other(described()))
            }
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
                StoreError::Corrupt(described())
            }
            _ => StoreError::bug(std::io::Error::other(described())),
        },
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Corrupt(described()),
        _ => StoreError::bug(std::io::Error::other(described())),
    }
}

/// [`sqlite_error`] for `map_err`.
fn sqlite(e: rusqlite::Error) -> StoreError {
    sqlite_error(&e)
}

/// A value in a row that we did not write.
fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// Columns added since a table was first created: files written by an earlier version
/// get them when opened.
const ADDED_COLUMNS: [(&str, &str, &str); 10] = [
    ("windows", "event_id", "TEXT NOT NULL DEFAULT ''"),
    ("link_stats", "first_clicked_at", "INTEGER"),
    ("link_stats", "delivered_at", "INTEGER"),
    ("campaign_stats", "first_clicked_at", "INTEGER"),
    (
        "campaign_stats",
        "unique_clicks",
        "INTEGER NOT NULL DEFAULT 0",
    ),
    ("links", "ios_url", "TEXT"),
    ("links", "android_url", "TEXT"),
    ("links", "forward_query", "INTEGER NOT NULL DEFAULT 0"),
    ("links", "liveness_set_at", "INTEGER"),
    ("subscriptions", "rate_limit", "INTEGER"),
];

/// Brings a file written by an earlier version up to `schema.sql`.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    // The campaigns of a file written before campaigns were listed.
    (conn.execute_batch(
        "INSERT OR IGNORE INTO campaigns (campaign_id, created_at) \
         SELECT campaign_id, min(created_at) FROM links \
         WHERE NOT EXISTS (SELECT 1 FROM campaigns) GROUP BY campaign_id",
    ))
    .map_err(sqlite)?;
    for (table, column, kind) in ADDED_COLUMNS {
        let has: bool = conn
            .query_row(
                "SELECT count(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
                [table, column],
                |r| r.get(0),
            )
            .map_err(sqlite)?;
        if !has {
            (conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}")))
                .map_err(sqlite)?;
        }
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
    .map_err(sqlite)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;",
    )
    .map_err(sqlite)?;
    Ok(conn)
}
