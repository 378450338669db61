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

use super::{ChangeListener, Created, LinkPage, LinkQuery, Store, StoreError};
use crate::domain::{
    CampaignId, Destination, ExternalLeadId, Link, LinkPatch, NewLink, Phone, ShortCode,
    from_millis, now_millis,
};
use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Most jobs committed in one transaction; bounds the latency a large batch adds to the
/// jobs queued behind it.
const MAX_JOBS_PER_COMMIT: usize = 512;
/// Most idle read connections kept open.
const MAX_IDLE_READERS: usize = 8;
/// How many times a generated code is redrawn after a collision before we give up. With
/// 62^8 codes a single collision is already rare.
const CODE_ATTEMPTS: usize = 10;

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
CREATE INDEX IF NOT EXISTS links_by_campaign ON links (campaign_id, seq);
CREATE INDEX IF NOT EXISTS links_by_phone ON links (phone, seq);
";

const LINK_COLUMNS: &str =
    "code, campaign_id, phone, external_lead_id, url, created_at, expires_at, disabled";

/// A failure inside SQLite, kept as text so that one commit error can be reported to every
/// job of the batch.
#[derive(Debug, thiserror::Error)]
#[error("sqlite: {0}")]
struct SqliteFailure(String);

fn unavailable(e: impl std::fmt::Display) -> StoreError {
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
}

impl EmbeddedStore {
    /// Opens (creating if needed) `<data_dir>/akti-link.sqlite3` and starts the writer.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(unavailable)?;
        let path = data_dir.join("akti-link.sqlite3");
        let writer = open_connection(&path)?;
        writer.execute_batch(SCHEMA).map_err(unavailable)?;
        let (jobs, queue) = mpsc::channel::<Job>(4096);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run_writer(writer, queue))
            .map_err(unavailable)?;
        Ok(Self {
            jobs,
            path,
            readers: Arc::default(),
        })
    }

    /// Runs `f` on the writer thread inside the next group commit; answers after the commit.
    async fn write<T: Send + 'static>(
        &self,
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
        self.jobs.send(job).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Runs `f` on a pooled read connection in a blocking thread.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
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
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(unavailable)?
    }
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

fn link_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Link> {
    let phone: String = row.get(2)?;
    Ok(Link {
        code: ShortCode::from_trusted(row.get(0)?),
        campaign_id: CampaignId::from_trusted(row.get(1)?),
        phone: (!phone.is_empty()).then(|| Phone::from_trusted(phone)),
        external_lead_id: row
            .get::<_, Option<String>>(3)?
            .map(ExternalLeadId::from_trusted),
        url: Destination::from_trusted(&row.get::<_, String>(4)?),
        created_at: from_millis(row.get(5)?),
        expires_at: row.get::<_, Option<i64>>(6)?.map(from_millis),
        disabled: row.get(7)?,
    })
}

fn phone_column(phone: Option<&Phone>) -> &str {
    phone.map_or("", Phone::as_str)
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

fn find_by_identity(conn: &Connection, new: &NewLink) -> Result<Option<Link>, StoreError> {
    let (campaign, phone, url) = new.identity();
    conn.prepare_cached(&format!(
        "SELECT {LINK_COLUMNS} FROM links WHERE campaign_id = ?1 AND phone = ?2 AND url = ?3"
    ))
    .and_then(|mut s| {
        s.query_row(
            params![campaign.as_str(), phone_column(phone), url.as_str()],
            link_from_row,
        )
        .optional()
    })
    .map_err(unavailable)
}

fn find_by_code(conn: &Connection, code: &str) -> Result<Option<Link>, StoreError> {
    conn.prepare_cached(&format!("SELECT {LINK_COLUMNS} FROM links WHERE code = ?1"))
        .and_then(|mut s| s.query_row([code], link_from_row).optional())
        .map_err(unavailable)
}

fn insert(conn: &Connection, link: &Link) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO links (code, campaign_id, phone, external_lead_id, url, created_at, \
         expires_at, disabled) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        link.code.as_str(),
        link.campaign_id.as_str(),
        phone_column(link.phone.as_ref()),
        link.external_lead_id.as_ref().map(ExternalLeadId::as_str),
        link.url.as_str(),
        link.created_at.timestamp_millis(),
        link.expires_at.map(|t| t.timestamp_millis()),
        link.disabled,
    ])?;
    Ok(())
}

fn create_one(conn: &Connection, new: NewLink, code_length: usize) -> Result<Created, StoreError> {
    if let Some(existing) = find_by_identity(conn, &new)? {
        if new.code.as_ref().is_some_and(|c| *c != existing.code) {
            return Err(StoreError::IdentityTaken);
        }
        return Ok(Created {
            link: existing,
            is_new: false,
        });
    }
    let custom = new.code.clone();
    let now = now_millis();
    for _ in 0..CODE_ATTEMPTS {
        let code = custom
            .clone()
            .unwrap_or_else(|| ShortCode::generate(code_length));
        let link = new.clone().into_link(code, now);
        match insert(conn, &link) {
            Ok(()) => return Ok(Created { link, is_new: true }),
            Err(e) if is_unique_violation(&e) && custom.is_some() => {
                return Err(StoreError::CodeTaken);
            }
            Err(e) if is_unique_violation(&e) => continue,
            Err(e) => return Err(unavailable(e)),
        }
    }
    Err(unavailable("no free code found; raise AKTI_CODE_LENGTH"))
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(unavailable)
        })
        .await
    }

    async fn create_links(
        &self,
        links: Vec<NewLink>,
        code_length: usize,
    ) -> Result<Vec<Created>, StoreError> {
        self.write(move |conn| {
            links
                .into_iter()
                .map(|new| create_one(conn, new, code_length))
                .collect()
        })
        .await
    }

    async fn get_link(&self, code: &ShortCode) -> Result<Option<Link>, StoreError> {
        let code = code.clone();
        self.read(move |conn| find_by_code(conn, code.as_str()))
            .await
    }

    async fn update_link(
        &self,
        code: &ShortCode,
        patch: &LinkPatch,
    ) -> Result<Option<Link>, StoreError> {
        let (code, patch) = (code.clone(), patch.clone());
        self.write(move |conn| {
            let Some(mut link) = find_by_code(conn, code.as_str())? else {
                return Ok(None);
            };
            patch.apply(&mut link);
            let updated = conn
                .prepare_cached(
                    "UPDATE links SET url = ?2, disabled = ?3, expires_at = ?4 WHERE code = ?1",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        code.as_str(),
                        link.url.as_str(),
                        link.disabled,
                        link.expires_at.map(|t| t.timestamp_millis()),
                    ])
                });
            match updated {
                Ok(_) => Ok(Some(link)),
                Err(e) if is_unique_violation(&e) => Err(StoreError::IdentityTaken),
                Err(e) => Err(unavailable(e)),
            }
        })
        .await
    }

    async fn delete_link(&self, code: &ShortCode) -> Result<bool, StoreError> {
        let code = code.clone();
        self.write(move |conn| {
            conn.execute("DELETE FROM links WHERE code = ?1", [code.as_str()])
                .map(|n| n > 0)
                .map_err(unavailable)
        })
        .await
    }

    async fn list_links(&self, query: &LinkQuery) -> Result<LinkPage, StoreError> {
        let after: i64 = match &query.cursor {
            Some(c) => c.parse().map_err(|_| StoreError::InvalidCursor)?,
            None => 0,
        };
        let query = query.clone();
        self.read(move |conn| {
            let mut sql = format!("SELECT {LINK_COLUMNS}, seq FROM links WHERE seq > ?1");
            if query.campaign_id.is_some() {
                sql.push_str(" AND campaign_id = ?2");
            }
            if query.phone.is_some() {
                sql.push_str(" AND phone = ?3");
            }
            sql.push_str(" ORDER BY seq LIMIT ?4");
            let mut stmt = conn.prepare_cached(&sql).map_err(unavailable)?;
            for (index, value) in [
                (2, query.campaign_id.as_ref().map(CampaignId::as_str)),
                (3, query.phone.as_ref().map(Phone::as_str)),
            ] {
                if let Some(value) = value {
                    stmt.raw_bind_parameter(index, value).map_err(unavailable)?;
                }
            }
            stmt.raw_bind_parameter(1, after).map_err(unavailable)?;
            stmt.raw_bind_parameter(4, query.limit as i64 + 1)
                .map_err(unavailable)?;
            let mut rows = stmt.raw_query();
            let mut links = Vec::with_capacity(query.limit + 1);
            let mut last_seq = 0i64;
            while let Some(row) = rows.next().map_err(unavailable)? {
                if links.len() == query.limit {
                    return Ok(LinkPage {
                        links,
                        next_cursor: Some(last_seq.to_string()),
                    });
                }
                links.push(link_from_row(row).map_err(unavailable)?);
                last_seq = row.get(8).map_err(unavailable)?;
            }
            Ok(LinkPage {
                links,
                next_cursor: None,
            })
        })
        .await
    }

    async fn announce_change(&self, _code: &ShortCode) -> Result<(), StoreError> {
        Ok(())
    }

    fn watch_changes(
        &self,
        _listener: ChangeListener,
        _shutdown: tokio_util::sync::CancellationToken,
    ) {
        // One process: every change is made here, and the caller invalidates its own cache.
    }
}
