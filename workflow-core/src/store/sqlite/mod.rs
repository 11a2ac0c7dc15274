//! The embedded SQLite store: WAL, `synchronous = FULL`, one writer task with group commit.
//!
//! Every write goes to a single writer task. It takes the first waiting request and every
//! other request already queued (up to [`MAX_BATCH`]), runs them in one `BEGIN IMMEDIATE`
//! transaction and commits once: one fsync for the whole batch. One request's failure never
//! fails another's: a refused request (a lost lease, a finished run) writes nothing, and a
//! database error inside a request makes the writer run the batch again with a savepoint per
//! request. A busy or locked database (another process
//! writing) is retried. Reads use a few connections of their own, which WAL runs beside the
//! writer. Any number of processes may open one file: the fencing checks run inside the
//! writer's exclusive transaction, so they are exact.

mod queue_budget;
mod reads;
mod writes;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::Connection;

use super::writer::{sql_store, unexpected, Op, Reply, Writer};
use super::StoreError;
use crate::run_id::RunId;
use reads::SqliteReads;
use writes::{db, is_transient, run_batch, BUSY_ATTEMPTS};

/// Schema version this build writes and reads.
const SCHEMA_VERSION: i64 = 4;
/// Most write requests committed in one transaction.
const MAX_BATCH: usize = 512;
/// Read connections.
const READERS: usize = 4;
/// The first bytes of every SQLite database file.
const SQLITE_HEADER: &[u8] = b"SQLite format 3\0";

/// The SQLite store. Create it with [`SqliteStore::open`] (or `Engine::sqlite`).
pub struct SqliteStore {
    location: String,
    reads: SqliteReads,
    writer: Writer,
}

/// Settings of [`SqliteStore::open_with`].
#[derive(Debug, Clone, Copy)]
pub struct SqliteOptions {
    /// Commit queued writes of many runs together (default). Off, every write commits alone.
    pub group_commit: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions { group_commit: true }
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the store at `path` with group commit.
    pub async fn open(path: impl AsRef<std::path::Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// Opens (creating if missing) the store at `path`. A file that exists and is not a
    /// workflow store is refused and left untouched.
    pub async fn open_with(
        path: impl AsRef<std::path::Path>,
        options: SqliteOptions,
    ) -> Result<Self, StoreError> {
        let location = path.as_ref().display().to_string();
        refuse_foreign_file(path.as_ref(), &location)?;
        let open_error = |e: sqlx::Error| {
            let detail = e.to_string();
            if detail.contains("not a database") {
                StoreError::NotAStore {
                    location: location.clone(),
                    detail,
                }
            } else {
                StoreError::Database(format!("cannot open `{location}`: {detail}"))
            }
        };
        let connect = SqliteConnectOptions::from_str("sqlite:")
            .map_err(db)?
            .filename(path.as_ref())
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30));
        let mut conn = connect_retrying(&connect).await.map_err(open_error)?;
        migrate(&mut conn, &location).await?;
        let read_only = connect.read_only(true);
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = connect_retrying(&read_only).await.map_err(open_error)?;
            readers.push(tokio::sync::Mutex::new(reader));
        }
        let batch = if options.group_commit { MAX_BATCH } else { 1 };
        let writer = Writer::spawn(conn, batch, |conn, jobs| Box::pin(run_batch(conn, jobs)));
        let reads = SqliteReads {
            readers,
            next_reader: std::sync::atomic::AtomicUsize::new(0),
        };
        Ok(SqliteStore {
            location,
            reads,
            writer,
        })
    }

    /// The file this store lives in.
    pub fn location(&self) -> &str {
        &self.location
    }
}

/// Connects, retrying while another process holds the lock a new file's first connection
/// needs (switching it to WAL): several processes may create one store at once.
async fn connect_retrying(connect: &SqliteConnectOptions) -> Result<SqliteConnection, sqlx::Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match SqliteConnection::connect_with(connect).await {
            Err(e) if is_transient(&e) && attempt < BUSY_ATTEMPTS * 4 => {
                tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt))).await;
            }
            result => return result,
        }
    }
}

/// Refuses a file that exists, is not empty and is not an SQLite database, before SQLite
/// touches it.
fn refuse_foreign_file(path: &std::path::Path, location: &str) -> Result<(), StoreError> {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(path) else {
        return Ok(()); // missing: created below
    };
    let mut header = Vec::with_capacity(SQLITE_HEADER.len());
    (&mut file)
        .take(SQLITE_HEADER.len() as u64)
        .read_to_end(&mut header)
        .map_err(|e| StoreError::Database(format!("cannot read `{location}`: {e}")))?;
    if header.is_empty() || header == SQLITE_HEADER {
        return Ok(());
    }
    Err(StoreError::NotAStore {
        location: location.to_owned(),
        detail: "the file is not an SQLite database; it was left untouched".into(),
    })
}

/// Creates the schema in a new file; checks the version of an existing one. Runs in an
/// immediate transaction, so processes creating one new file at once do not collide.
async fn migrate(conn: &mut SqliteConnection, location: &str) -> Result<(), StoreError> {
    let not_a_store = |detail: String| StoreError::NotAStore {
        location: location.to_owned(),
        detail,
    };
    let mut tx = conn
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(|e| not_a_store(e.to_string()))?;
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| not_a_store(e.to_string()))?;
    if tables.is_empty() {
        // A new store: version 3's tables, then the upgrades below.
        sqlx::raw_sql(include_str!("schema.sql"))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("INSERT INTO wf_meta (key, value) VALUES ('schema_version', 3)")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    } else if !tables.iter().any(|t| t == "wf_meta") {
        return Err(not_a_store(format!(
            "it is an SQLite database with other tables ({})",
            tables.join(", ")
        )));
    }
    let found: Option<i64> =
        sqlx::query_scalar("SELECT value FROM wf_meta WHERE key = 'schema_version'")
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| not_a_store(e.to_string()))?;
    match found {
        Some(SCHEMA_VERSION) => Ok(()),
        Some(found @ 2..SCHEMA_VERSION) => {
            for (from, upgrade) in UPGRADES {
                if from >= found {
                    sqlx::raw_sql(upgrade).execute(&mut *tx).await.map_err(db)?;
                }
            }
            sqlx::query("UPDATE wf_meta SET value = ? WHERE key = 'schema_version'")
                .bind(SCHEMA_VERSION)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)
        }
        Some(found) if found > SCHEMA_VERSION => Err(StoreError::NewerSchema {
            location: location.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        }),
        other => Err(not_a_store(format!(
            "schema version {other:?} is not the {SCHEMA_VERSION} this build reads"
        ))),
    }
}

/// The schema's upgrades: from each version to the next.
const UPGRADES: [(i64, &str); 2] = [
    (2, include_str!("v2_to_v3.sql")),
    (3, include_str!("v3_to_v4.sql")),
];

sql_store!(SqliteStore);
