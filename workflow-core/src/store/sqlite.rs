//! The embedded SQLite store: WAL, `synchronous = FULL`, one writer task with group commit.
//!
//! Every write goes to a single writer task. It takes the first waiting request and every
//! other request already queued (up to [`MAX_BATCH`]), runs them in one transaction and
//! commits once: one fsync for the whole batch. Reads use a small pool of connections, which
//! WAL lets run beside the writer.

use std::str::FromStr;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection, Row};
use tokio::sync::{mpsc, oneshot};

use super::{JournalRecord, NewRun, RecordKind, RunRecord, RunStatus, Store, StoreError};
use crate::run_id::RunId;

/// Schema version this build writes and reads.
const SCHEMA_VERSION: i64 = 1;
/// Most write requests committed in one transaction.
const MAX_BATCH: usize = 512;

/// The SQLite store. Create it with [`SqliteStore::open`] (or `Engine::sqlite`).
pub struct SqliteStore {
    location: String,
    readers: Vec<tokio::sync::Mutex<SqliteConnection>>,
    next_reader: std::sync::atomic::AtomicUsize,
    writer: mpsc::Sender<Job>,
}

/// Read connections. Plain connections, not an `SqlitePool`: a pool arms a timer around every
/// acquire, which paused test time (`tokio::time::pause`) fires at once.
const READERS: usize = 4;

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

enum Op {
    CreateRun(NewRun),
    Append(RunId, Vec<JournalRecord>),
    SetWaiting(RunId, Option<String>),
    Finish(RunId, RunStatus, Option<Vec<u8>>, Option<String>),
    SendSignal(RunId, String, Vec<u8>),
    ConsumeSignal(RunId, String, JournalRecord),
}

enum Reply {
    Run(RunRecord),
    Done,
    Signal(Option<Vec<u8>>),
}

struct Job {
    op: Op,
    reply: oneshot::Sender<Result<Reply, StoreError>>,
}

/// An error opening `location`: "not a store" when SQLite says the file is no database.
fn open_error(location: &str, error: sqlx::Error) -> StoreError {
    let detail = error.to_string();
    if detail.contains("not a database") {
        StoreError::NotAStore {
            location: location.to_owned(),
            detail,
        }
    } else {
        StoreError::Database(format!("cannot open `{location}`: {detail}"))
    }
}

fn db(error: sqlx::Error) -> StoreError {
    StoreError::Database(error.to_string())
}

impl SqliteStore {
    /// Opens (creating if missing) the store at `path` with group commit.
    pub async fn open(path: impl AsRef<std::path::Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// Opens (creating if missing) the store at `path`.
    pub async fn open_with(
        path: impl AsRef<std::path::Path>,
        options: SqliteOptions,
    ) -> Result<Self, StoreError> {
        let location = path.as_ref().display().to_string();
        let not_a_store = |e: sqlx::Error| open_error(&location, e);
        let connect = SqliteConnectOptions::from_str("sqlite:")
            .map_err(db)?
            .filename(path.as_ref())
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30));
        let mut conn = SqliteConnection::connect_with(&connect)
            .await
            .map_err(not_a_store)?;
        migrate(&mut conn, &location).await?;
        let read_only = connect.read_only(true);
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = SqliteConnection::connect_with(&read_only)
                .await
                .map_err(not_a_store)?;
            readers.push(tokio::sync::Mutex::new(reader));
        }
        let (writer, jobs) = mpsc::channel(4096);
        let batch = if options.group_commit { MAX_BATCH } else { 1 };
        tokio::spawn(write_loop(conn, jobs, batch));
        Ok(SqliteStore {
            location,
            readers,
            next_reader: std::sync::atomic::AtomicUsize::new(0),
            writer,
        })
    }

    /// The file this store lives in.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// A free read connection, or the next one in turn.
    async fn reader(&self) -> tokio::sync::MutexGuard<'_, SqliteConnection> {
        if let Some(free) = self.readers.iter().find_map(|r| r.try_lock().ok()) {
            return free;
        }
        let turn = self
            .next_reader
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.readers[turn % self.readers.len()].lock().await
    }

    async fn write(&self, op: Op) -> Result<Reply, StoreError> {
        let (reply, answer) = oneshot::channel();
        let closed = || StoreError::Database("the store's writer task has stopped".into());
        self.writer
            .send(Job { op, reply })
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

/// Creates the schema in a new file; checks the version of an existing one.
async fn migrate(conn: &mut SqliteConnection, location: &str) -> Result<(), StoreError> {
    let not_a_store = |detail: String| StoreError::NotAStore {
        location: location.to_owned(),
        detail,
    };
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| not_a_store(e.to_string()))?;
    if !tables.is_empty() && !tables.iter().any(|t| t == "wf_meta") {
        return Err(not_a_store(format!(
            "it is an SQLite database with other tables ({})",
            tables.join(", ")
        )));
    }
    if tables.is_empty() {
        let mut tx = conn.begin().await.map_err(db)?;
        sqlx::raw_sql(include_str!("schema.sql"))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("INSERT INTO wf_meta (key, value) VALUES ('schema_version', ?)")
            .bind(SCHEMA_VERSION)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        return Ok(());
    }
    let found: Option<i64> =
        sqlx::query_scalar("SELECT value FROM wf_meta WHERE key = 'schema_version'")
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
    match found {
        Some(SCHEMA_VERSION) => Ok(()),
        Some(found) if found > SCHEMA_VERSION => Err(StoreError::NewerSchema {
            location: location.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        }),
        other => Err(not_a_store(format!("unexpected schema version {other:?}"))),
    }
}

/// The writer task: batches queued writes into one transaction each.
async fn write_loop(mut conn: SqliteConnection, mut jobs: mpsc::Receiver<Job>, max_batch: usize) {
    let mut batch = Vec::with_capacity(max_batch);
    while jobs.recv_many(&mut batch, max_batch).await > 0 {
        let results = run_batch(&mut conn, &mut batch).await;
        for (job, result) in batch.drain(..).zip(results) {
            let _ = job.reply.send(result);
        }
    }
}

/// Runs a batch in one transaction. A database error fails the whole batch (nothing of it is
/// committed); a logical error (unknown run, finished run) fails only its own request.
async fn run_batch(
    conn: &mut SqliteConnection,
    batch: &mut [Job],
) -> Vec<Result<Reply, StoreError>> {
    let outcome: Result<Vec<Result<Reply, StoreError>>, sqlx::Error> = async {
        let mut tx = conn.begin().await?;
        let mut results = Vec::with_capacity(batch.len());
        for job in batch.iter() {
            results.push(apply(&mut tx, &job.op).await?);
        }
        tx.commit().await?;
        Ok(results)
    }
    .await;
    match outcome {
        Ok(results) => results,
        Err(e) => batch.iter().map(|_| Err(db(clone_error(&e)))).collect(),
    }
}

fn clone_error(e: &sqlx::Error) -> sqlx::Error {
    sqlx::Error::Protocol(e.to_string())
}

/// Applies one write inside the batch's transaction.
async fn apply(
    tx: &mut SqliteConnection,
    op: &Op,
) -> Result<Result<Reply, StoreError>, sqlx::Error> {
    Ok(match op {
        Op::CreateRun(run) => {
            sqlx::query(
                "INSERT INTO wf_runs (run_id, workflow, version, definition_hash, status, input, created_seq)
                 VALUES (?, ?, ?, ?, 'running', ?, (SELECT COALESCE(MAX(created_seq), 0) + 1 FROM wf_runs))
                 ON CONFLICT (run_id) DO NOTHING",
            )
            .bind(run.run_id.as_str())
            .bind(&run.workflow)
            .bind(i64::from(run.version))
            .bind(run.definition_hash as i64)
            .bind(&run.input)
            .execute(&mut *tx)
            .await?;
            let row = sqlx::query("SELECT * FROM wf_runs WHERE run_id = ?")
                .bind(run.run_id.as_str())
                .fetch_one(&mut *tx)
                .await?;
            run_record(&row).map(Reply::Run)
        }
        Op::Append(run_id, records) => {
            for record in records {
                insert_record(tx, run_id, record).await?;
            }
            Ok(Reply::Done)
        }
        Op::SetWaiting(run_id, waiting_for) => {
            let status = if waiting_for.is_some() {
                "waiting"
            } else {
                "running"
            };
            sqlx::query("UPDATE wf_runs SET status = ?, waiting_for = ? WHERE run_id = ? AND status IN ('running', 'waiting')")
                .bind(status)
                .bind(waiting_for)
                .bind(run_id.as_str())
                .execute(&mut *tx)
                .await?;
            Ok(Reply::Done)
        }
        Op::Finish(run_id, status, output, error) => {
            sqlx::query("UPDATE wf_runs SET status = ?, output = ?, error = ?, waiting_for = NULL WHERE run_id = ?")
                .bind(status.as_str())
                .bind(output)
                .bind(error)
                .bind(run_id.as_str())
                .execute(&mut *tx)
                .await?;
            Ok(Reply::Done)
        }
        Op::SendSignal(run_id, name, payload) => {
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM wf_runs WHERE run_id = ?")
                    .bind(run_id.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
            match status.as_deref().map(RunStatus::parse) {
                None => Err(StoreError::UnknownRun(run_id.clone())),
                Some(Some(status)) if status.is_finished() => Err(StoreError::RunFinished {
                    run_id: run_id.clone(),
                    status: status.as_str(),
                    signal: name.clone(),
                }),
                Some(_) => {
                    sqlx::query(
                        "INSERT INTO wf_signals (run_id, name, seq, payload)
                         VALUES (?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM wf_signals WHERE run_id = ? AND name = ?), ?)",
                    )
                    .bind(run_id.as_str())
                    .bind(name)
                    .bind(run_id.as_str())
                    .bind(name)
                    .bind(payload)
                    .execute(&mut *tx)
                    .await?;
                    Ok(Reply::Done)
                }
            }
        }
        Op::ConsumeSignal(run_id, name, record) => {
            let next = sqlx::query("SELECT seq, payload FROM wf_signals WHERE run_id = ? AND name = ? AND consumed = 0 ORDER BY seq LIMIT 1")
                .bind(run_id.as_str())
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
            match next {
                None => Ok(Reply::Signal(None)),
                Some(row) => {
                    let seq: i64 = row.try_get("seq")?;
                    let payload: Vec<u8> = row.try_get("payload")?;
                    sqlx::query("UPDATE wf_signals SET consumed = 1 WHERE run_id = ? AND name = ? AND seq = ?")
                        .bind(run_id.as_str())
                        .bind(name)
                        .bind(seq)
                        .execute(&mut *tx)
                        .await?;
                    let record = JournalRecord {
                        payload: payload.clone(),
                        ..record.clone()
                    };
                    insert_record(tx, run_id, &record).await?;
                    Ok(Reply::Signal(Some(payload)))
                }
            }
        }
    })
}

async fn insert_record(
    tx: &mut SqliteConnection,
    run_id: &RunId,
    record: &JournalRecord,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO wf_journal (run_id, seq, kind, step, item, payload, checksum) VALUES (?, ?, ?, ?, ?, ?, ?)")
        .bind(run_id.as_str())
        .bind(record.seq as i64)
        .bind(record.kind.as_str())
        .bind(i64::from(record.step))
        .bind(record.item.map(|i| i as i64))
        .bind(&record.payload)
        .bind(record.checksum(run_id))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

fn run_record(row: &SqliteRow) -> Result<RunRecord, StoreError> {
    let get = |e: sqlx::Error| StoreError::Database(e.to_string());
    let run_id: String = row.try_get("run_id").map_err(get)?;
    let status: String = row.try_get("status").map_err(get)?;
    Ok(RunRecord {
        status: RunStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
            run_id: RunId::from(run_id.as_str()),
            seq: 0,
            detail: format!("unknown run status `{status}`"),
        })?,
        run_id: RunId::from(run_id),
        workflow: row.try_get("workflow").map_err(get)?,
        version: row.try_get::<i64, _>("version").map_err(get)? as u32,
        definition_hash: row.try_get::<i64, _>("definition_hash").map_err(get)? as u64,
        input: row.try_get("input").map_err(get)?,
        output: row.try_get("output").map_err(get)?,
        error: row.try_get("error").map_err(get)?,
        waiting_for: row.try_get("waiting_for").map_err(get)?,
    })
}

fn journal_record(run_id: &RunId, row: &SqliteRow) -> Result<JournalRecord, StoreError> {
    let get = |e: sqlx::Error| StoreError::Database(e.to_string());
    let seq = row.try_get::<i64, _>("seq").map_err(get)? as u64;
    let corrupt = |detail: String| StoreError::Corrupt {
        run_id: run_id.clone(),
        seq,
        detail,
    };
    let kind: String = row.try_get("kind").map_err(get)?;
    let record = JournalRecord {
        seq,
        kind: RecordKind::parse(&kind)
            .ok_or_else(|| corrupt(format!("unknown record kind `{kind}`")))?,
        step: u16::try_from(row.try_get::<i64, _>("step").map_err(get)?)
            .map_err(|_| corrupt("step index out of range".into()))?,
        item: row
            .try_get::<Option<i64>, _>("item")
            .map_err(get)?
            .map(|i| i as u64),
        payload: row.try_get("payload").map_err(get)?,
    };
    let stored: i64 = row.try_get("checksum").map_err(get)?;
    if stored != record.checksum(run_id) {
        return Err(corrupt(
            "checksum mismatch: the record was altered or truncated".into(),
        ));
    }
    Ok(record)
}

impl Store for SqliteStore {
    fn create_run<'a>(&'a self, run: &'a NewRun) -> BoxFuture<'a, Result<RunRecord, StoreError>> {
        Box::pin(async move {
            match self.write(Op::CreateRun(run.clone())).await? {
                Reply::Run(record) => Ok(record),
                _ => Err(StoreError::Database(
                    "unexpected reply to create_run".into(),
                )),
            }
        })
    }

    fn load_run<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM wf_runs WHERE run_id = ?")
                .bind(run_id.as_str())
                .fetch_optional(&mut *self.reader().await)
                .await
                .map_err(db)?;
            row.as_ref().map(run_record).transpose()
        })
    }

    fn journal<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Vec<JournalRecord>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT * FROM wf_journal WHERE run_id = ? ORDER BY seq")
                .bind(run_id.as_str())
                .fetch_all(&mut *self.reader().await)
                .await
                .map_err(db)?;
            let records = rows
                .iter()
                .map(|row| journal_record(run_id, row))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some((i, record)) = records.iter().enumerate().find(|(i, r)| r.seq != *i as u64)
            {
                return Err(StoreError::Corrupt {
                    run_id: run_id.clone(),
                    seq: record.seq,
                    detail: format!("journal gap: expected record #{i}"),
                });
            }
            Ok(records)
        })
    }

    fn append<'a>(
        &'a self,
        run_id: &'a RunId,
        records: Vec<JournalRecord>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.write(Op::Append(run_id.clone(), records))
                .await
                .map(drop)
        })
    }

    fn set_waiting<'a>(
        &'a self,
        run_id: &'a RunId,
        waiting_for: Option<String>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.write(Op::SetWaiting(run_id.clone(), waiting_for))
                .await
                .map(drop)
        })
    }

    fn finish<'a>(
        &'a self,
        run_id: &'a RunId,
        status: RunStatus,
        output: Option<Vec<u8>>,
        error: Option<String>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.write(Op::Finish(run_id.clone(), status, output, error))
                .await
                .map(drop)
        })
    }

    fn list<'a>(
        &'a self,
        status: Option<RunStatus>,
    ) -> BoxFuture<'a, Result<Vec<RunRecord>, StoreError>> {
        Box::pin(async move {
            let rows = match status {
                Some(status) => {
                    sqlx::query("SELECT * FROM wf_runs WHERE status = ? ORDER BY created_seq")
                        .bind(status.as_str())
                        .fetch_all(&mut *self.reader().await)
                        .await
                }
                None => {
                    sqlx::query("SELECT * FROM wf_runs ORDER BY created_seq")
                        .fetch_all(&mut *self.reader().await)
                        .await
                }
            }
            .map_err(db)?;
            rows.iter().map(run_record).collect()
        })
    }

    fn send_signal<'a>(
        &'a self,
        run_id: &'a RunId,
        name: &'a str,
        payload: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.write(Op::SendSignal(run_id.clone(), name.to_owned(), payload))
                .await
                .map(drop)
        })
    }

    fn has_signal<'a>(
        &'a self,
        run_id: &'a RunId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT seq FROM wf_signals WHERE run_id = ? AND name = ? AND consumed = 0 LIMIT 1",
            )
            .bind(run_id.as_str())
            .bind(name)
            .fetch_optional(&mut *self.reader().await)
            .await
            .map_err(db)?;
            Ok(found.is_some())
        })
    }

    fn consume_signal<'a>(
        &'a self,
        run_id: &'a RunId,
        name: &'a str,
        record: JournalRecord,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move {
            match self
                .write(Op::ConsumeSignal(run_id.clone(), name.to_owned(), record))
                .await?
            {
                Reply::Signal(payload) => Ok(payload),
                _ => Err(StoreError::Database(
                    "unexpected reply to consume_signal".into(),
                )),
            }
        })
    }
}
