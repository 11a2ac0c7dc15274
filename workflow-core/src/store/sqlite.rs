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

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection, Row};
use tokio::sync::{mpsc, oneshot};

use super::checksum::{record_checksum, result_checksum, run_checksum};
use super::queue::gcra_allow;
use super::{
    Claim, ClaimRequest, ClaimedRun, JournalRecord, NewRun, Park, Parked, QueueConfig, RunEnd,
    RunFilter, RunPage, RunRecord, RunStatus, RunSummary, Store, StoreError, WorkerId,
    WorkerRegistration,
};
use crate::journal::{EncodedEvent, JournalEvent};
use crate::run_id::RunId;

/// Schema version this build writes and reads.
const SCHEMA_VERSION: i64 = 2;
/// Most write requests committed in one transaction.
const MAX_BATCH: usize = 512;
/// Attempts of a batch whose transaction found the database busy or locked.
const BUSY_ATTEMPTS: u32 = 8;
/// Read connections. Plain connections, not an `SqlitePool`: a pool arms a timer around every
/// acquire, which paused test time (`tokio::time::pause`) fires at once.
const READERS: usize = 4;
/// The first bytes of every SQLite database file.
const SQLITE_HEADER: &[u8] = b"SQLite format 3\0";

/// The SQLite store. Create it with [`SqliteStore::open`] (or `Engine::sqlite`).
pub struct SqliteStore {
    location: String,
    readers: Vec<tokio::sync::Mutex<SqliteConnection>>,
    next_reader: std::sync::atomic::AtomicUsize,
    writer: mpsc::Sender<Job>,
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

enum Op {
    CreateRun(NewRun),
    SendSignal(RunId, String, Vec<u8>),
    RequestCancel(RunId),
    SetQueue(QueueConfig),
    RegisterWorker(WorkerRegistration),
    Heartbeat(WorkerId, Duration),
    DeregisterWorker(WorkerId),
    Reap,
    Claim(WorkerId, ClaimRequest),
    ClaimRun(WorkerId, RunId),
    Append(Claim, Vec<JournalRecord>),
    ConsumeSignal(Claim, u64, String, String),
    SetWaiting(Claim, Option<String>),
    Park(Claim, Park),
    Release(Claim),
    Finish(Claim, RunEnd),
}

enum Reply {
    Run(Box<RunRecord>),
    Done,
    Payload(Option<Vec<u8>>),
    Status(RunStatus),
    RunIds(Vec<RunId>),
    Count(u64),
    Claimed(Vec<ClaimedRun>),
    Parked(Parked),
}

struct Job {
    op: Op,
    reply: oneshot::Sender<Result<Reply, StoreError>>,
}

fn db(error: sqlx::Error) -> StoreError {
    StoreError::Database(error.to_string())
}

/// True for errors that go away on their own: another connection holds the write lock.
fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(e) => {
            let code = e.code();
            let code = code.as_deref().unwrap_or("");
            // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes.
            matches!(code.parse::<i64>(), Ok(c) if c & 0xff == 5 || c & 0xff == 6)
        }
        sqlx::Error::PoolTimedOut => true,
        _ => false,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn to_ms(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().min(i64::MAX as u128) as i64)
}

fn from_ms(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
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
        sqlx::raw_sql(include_str!("schema.sql"))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("INSERT INTO wf_meta (key, value) VALUES ('schema_version', ?)")
            .bind(SCHEMA_VERSION)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        return tx.commit().await.map_err(db);
    }
    if !tables.iter().any(|t| t == "wf_meta") {
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

/// The writer task: batches queued writes into one transaction each.
async fn write_loop(mut conn: SqliteConnection, mut jobs: mpsc::Receiver<Job>, max_batch: usize) {
    let mut batch = Vec::with_capacity(max_batch);
    while jobs.recv_many(&mut batch, max_batch).await > 0 {
        let results = run_batch(&mut conn, &batch).await;
        for (job, result) in batch.drain(..).zip(results) {
            let _ = job.reply.send(result);
        }
    }
}

/// Runs a batch in one transaction, retrying it while the database is busy. Each request runs
/// in a savepoint: a request that fails is rolled back alone and the others still commit.
async fn run_batch(conn: &mut SqliteConnection, batch: &[Job]) -> Vec<Result<Reply, StoreError>> {
    let mut attempt = 0;
    let mut isolated = false;
    loop {
        attempt += 1;
        match try_batch(conn, batch, isolated).await {
            Ok(Some(results)) => return results,
            // A request failed in the database: run the batch again, each request in a
            // savepoint, so that only that request fails.
            Ok(None) => isolated = true,
            Err(e) if is_transient(&e) && attempt < BUSY_ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(5 << attempt)).await;
            }
            Err(e) => {
                let text = e.to_string();
                return batch
                    .iter()
                    .map(|_| Err(StoreError::Database(text.clone())))
                    .collect();
            }
        }
    }
}

/// One transaction over the batch. Requests check what they need (fencing, run status)
/// before they write, so a request refused for such a reason leaves nothing behind. Only a
/// database error inside a request needs a rollback of its own: without `isolated`, the
/// transaction is then abandoned (`Ok(None)`) and the caller retries with a savepoint per
/// request (the rare path; savepoints cost three statements per request).
async fn try_batch(
    conn: &mut SqliteConnection,
    batch: &[Job],
    isolated: bool,
) -> Result<Option<Vec<Result<Reply, StoreError>>>, sqlx::Error> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        if isolated {
            sqlx::query("SAVEPOINT job").execute(&mut *tx).await?;
        }
        let result = match apply(&mut tx, &job.op).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(logical)) => Err(logical),
            Err(e) if is_transient(&e) => return Err(e),
            Err(_) if !isolated => return Ok(None),
            Err(e) => Err(db(e)),
        };
        if isolated {
            if result.is_err() {
                sqlx::query("ROLLBACK TO job").execute(&mut *tx).await?;
            }
            sqlx::query("RELEASE job").execute(&mut *tx).await?;
        }
        results.push(result);
    }
    tx.commit().await?;
    Ok(Some(results))
}

type Applied = Result<Result<Reply, StoreError>, sqlx::Error>;

/// Applies one write inside the batch's transaction.
async fn apply(tx: &mut SqliteConnection, op: &Op) -> Applied {
    match op {
        Op::CreateRun(run) => create_run(tx, run).await,
        Op::SendSignal(run_id, name, payload) => send_signal(tx, run_id, name, payload).await,
        Op::RequestCancel(run_id) => request_cancel(tx, run_id).await,
        Op::SetQueue(config) => {
            sqlx::query(
                "INSERT INTO wf_queues (queue, concurrency, rate_per_sec, burst) VALUES (?, ?, ?, ?)
                 ON CONFLICT (queue) DO UPDATE SET concurrency = excluded.concurrency,
                   rate_per_sec = excluded.rate_per_sec, burst = excluded.burst",
            )
            .bind(&config.queue)
            .bind(config.concurrency.map(i64::from))
            .bind(config.rate_per_sec)
            .bind(i64::from(config.burst.max(1)))
            .execute(&mut *tx)
            .await?;
            Ok(Ok(Reply::Done))
        }
        Op::RegisterWorker(registration) => {
            let now = now_ms();
            sqlx::query("INSERT OR REPLACE INTO wf_workers (worker_id, lease_expires, started_at) VALUES (?, ?, ?)")
                .bind(registration.worker.as_str())
                .bind(now + registration.lease.as_millis() as i64)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            Ok(Ok(Reply::Done))
        }
        Op::Heartbeat(worker, lease) => heartbeat(tx, worker, *lease).await,
        Op::DeregisterWorker(worker) => {
            sqlx::query("DELETE FROM wf_workers WHERE worker_id = ?")
                .bind(worker.as_str())
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE wf_runs SET status = 'ready', owner = NULL, epoch = epoch + 1 WHERE owner = ? AND status = 'claimed'")
                .bind(worker.as_str())
                .execute(&mut *tx)
                .await?;
            Ok(Ok(Reply::Done))
        }
        Op::Reap => reap(tx).await,
        Op::Claim(worker, request) => claim(tx, worker, request).await,
        Op::ClaimRun(worker, run_id) => claim_run(tx, worker, run_id).await,
        Op::Append(claim, records) => {
            // The first record's insert checks the claim in the same statement.
            for (i, record) in records.iter().enumerate() {
                let inserted = insert_record(tx, claim, record, i == 0).await?;
                if !inserted {
                    return Ok(Err(StoreError::LeaseLost {
                        run_id: claim.run_id.clone(),
                        epoch: claim.epoch,
                    }));
                }
            }
            Ok(Ok(Reply::Done))
        }
        Op::ConsumeSignal(claim, seq, step, name) => {
            consume_signal(tx, claim, *seq, step, name).await
        }
        Op::SetWaiting(claim, waiting_for) => {
            if let Err(lost) = fence(tx, claim).await? {
                return Ok(Err(lost));
            }
            sqlx::query("UPDATE wf_runs SET waiting_for = ? WHERE run_id = ?")
                .bind(waiting_for)
                .bind(claim.run_id.as_str())
                .execute(&mut *tx)
                .await?;
            Ok(Ok(Reply::Done))
        }
        Op::Park(claim, park) => park_run(tx, claim, park).await,
        Op::Release(claim) => {
            if let Err(lost) = fence(tx, claim).await? {
                return Ok(Err(lost));
            }
            sqlx::query("UPDATE wf_runs SET status = 'ready', owner = NULL, epoch = epoch + 1 WHERE run_id = ?")
                .bind(claim.run_id.as_str())
                .execute(&mut *tx)
                .await?;
            Ok(Ok(Reply::Done))
        }
        Op::Finish(claim, end) => {
            if let Err(lost) = fence(tx, claim).await? {
                return Ok(Err(lost));
            }
            let sum = result_checksum(
                &claim.run_id,
                end.status,
                end.output.as_deref(),
                end.error.as_deref(),
            );
            sqlx::query(
                "UPDATE wf_runs SET status = ?, output = ?, error = ?, result_checksum = ?, owner = NULL,
                   epoch = epoch + 1, wake_at = NULL, waiting_for = NULL WHERE run_id = ?",
            )
            .bind(end.status.as_str())
            .bind(&end.output)
            .bind(&end.error)
            .bind(sum)
            .bind(claim.run_id.as_str())
            .execute(&mut *tx)
            .await?;
            Ok(Ok(Reply::Done))
        }
    }
}

async fn create_run(tx: &mut SqliteConnection, run: &NewRun) -> Applied {
    let deadline = run.deadline_at.map(to_ms);
    sqlx::query(
        "INSERT INTO wf_runs (run_id, workflow, version, definition_hash, queue, status, deadline_at,
           input, checksum, created_seq)
         VALUES (?, ?, ?, ?, ?, 'ready', ?, ?, ?, (SELECT COALESCE(MAX(created_seq), 0) + 1 FROM wf_runs))
         ON CONFLICT (run_id) DO NOTHING",
    )
    .bind(run.run_id.as_str())
    .bind(&run.workflow)
    .bind(i64::from(run.version))
    .bind(run.definition_hash as i64)
    .bind(&run.queue)
    .bind(deadline)
    .bind(&run.input)
    .bind(run_checksum(run, deadline.map(|d| d as u64)))
    .execute(&mut *tx)
    .await?;
    let row = sqlx::query("SELECT * FROM wf_runs WHERE run_id = ?")
        .bind(run.run_id.as_str())
        .fetch_one(&mut *tx)
        .await?;
    Ok(run_record(&row).map(|r| Reply::Run(Box::new(r))))
}

/// The status of a run, read inside the transaction (`None`: no such run).
async fn status_of(
    tx: &mut SqliteConnection,
    run_id: &RunId,
) -> Result<Option<Result<RunStatus, StoreError>>, sqlx::Error> {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM wf_runs WHERE run_id = ?")
        .bind(run_id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    Ok(status.map(|text| {
        RunStatus::parse(&text).ok_or_else(|| StoreError::Corrupt {
            run_id: run_id.clone(),
            seq: None,
            detail: format!("unknown run status `{text}`"),
        })
    }))
}

/// Bumps the run's signal sequence and makes a parked run claimable now.
async fn wake(tx: &mut SqliteConnection, run_id: &RunId) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE wf_runs SET signal_seq = signal_seq + 1,
           wake_at = CASE WHEN status = 'waiting' THEN ? ELSE wake_at END WHERE run_id = ?",
    )
    .bind(now_ms())
    .bind(run_id.as_str())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn send_signal(
    tx: &mut SqliteConnection,
    run_id: &RunId,
    name: &str,
    payload: &[u8],
) -> Applied {
    match status_of(tx, run_id).await? {
        None => return Ok(Err(StoreError::UnknownRun(run_id.clone()))),
        Some(Err(e)) => return Ok(Err(e)),
        Some(Ok(status)) if status.is_finished() => {
            return Ok(Err(StoreError::RunFinished {
                run_id: run_id.clone(),
                status,
                signal: name.to_owned(),
            }))
        }
        Some(Ok(_)) => {}
    }
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
    wake(tx, run_id).await?;
    Ok(Ok(Reply::Done))
}

async fn request_cancel(tx: &mut SqliteConnection, run_id: &RunId) -> Applied {
    let status = match status_of(tx, run_id).await? {
        None => return Ok(Err(StoreError::UnknownRun(run_id.clone()))),
        Some(Err(e)) => return Ok(Err(e)),
        Some(Ok(status)) => status,
    };
    if !status.is_finished() {
        sqlx::query("UPDATE wf_runs SET cancel_requested = 1 WHERE run_id = ?")
            .bind(run_id.as_str())
            .execute(&mut *tx)
            .await?;
        wake(tx, run_id).await?;
    }
    Ok(Ok(Reply::Status(status)))
}

async fn heartbeat(tx: &mut SqliteConnection, worker: &WorkerId, lease: Duration) -> Applied {
    let updated = sqlx::query("UPDATE wf_workers SET lease_expires = ? WHERE worker_id = ?")
        .bind(now_ms() + lease.as_millis() as i64)
        .bind(worker.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if updated == 0 {
        return Ok(Err(StoreError::WorkerLost(worker.clone())));
    }
    let cancelled: Vec<String> = sqlx::query_scalar(
        "SELECT run_id FROM wf_runs WHERE owner = ? AND status = 'claimed' AND cancel_requested = 1",
    )
    .bind(worker.as_str())
    .fetch_all(&mut *tx)
    .await?;
    Ok(Ok(Reply::RunIds(
        cancelled.into_iter().map(RunId::from).collect(),
    )))
}

async fn reap(tx: &mut SqliteConnection) -> Applied {
    sqlx::query("DELETE FROM wf_workers WHERE lease_expires < ?")
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    let taken = sqlx::query(
        "UPDATE wf_runs SET status = 'ready', owner = NULL, epoch = epoch + 1
         WHERE status = 'claimed'
           AND NOT EXISTS (SELECT 1 FROM wf_workers w WHERE w.worker_id = wf_runs.owner)",
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(Ok(Reply::Count(taken)))
}

/// Claimable now: ready, or parked and due.
const CLAIMABLE: &str =
    "(status = 'ready' OR (status = 'waiting' AND wake_at IS NOT NULL AND wake_at <= ?))";

async fn claim(tx: &mut SqliteConnection, worker: &WorkerId, request: &ClaimRequest) -> Applied {
    if request.definitions.is_empty() || request.limit == 0 {
        return Ok(Ok(Reply::Claimed(Vec::new())));
    }
    let now = now_ms();
    let pairs = vec!["(?, ?)"; request.definitions.len()].join(", ");
    let sql = format!(
        "SELECT rowid, run_id, queue FROM wf_runs WHERE {CLAIMABLE}
           AND (workflow, definition_hash) IN (VALUES {pairs})
         ORDER BY created_seq LIMIT ?"
    );
    let mut query = sqlx::query(&sql).bind(now);
    for def in &request.definitions {
        query = query.bind(&def.workflow).bind(def.hash as i64);
    }
    // Look past runs a full queue holds back, but not without bound.
    let rows = query
        .bind(i64::from(request.limit) * 4 + 16)
        .fetch_all(&mut *tx)
        .await?;
    let mut budget = QueueBudget::default();
    let mut claimed = Vec::new();
    for row in rows {
        if claimed.len() >= request.limit as usize {
            break;
        }
        let rowid: i64 = row.try_get("rowid")?;
        let (Ok(run_id), Ok(queue)) = (
            row.try_get::<String, _>("run_id"),
            row.try_get::<String, _>("queue"),
        ) else {
            quarantine(tx, rowid, "the run id or queue does not decode").await?;
            continue;
        };
        if !budget.take(tx, &queue, now).await? {
            continue;
        }
        match take_claim(tx, worker, &RunId::from(run_id)).await? {
            Ok(run) => claimed.push(run),
            Err(error) => quarantine(tx, rowid, &error.to_string()).await?,
        }
    }
    budget.save(tx).await?;
    Ok(Ok(Reply::Claimed(claimed)))
}

async fn claim_run(tx: &mut SqliteConnection, worker: &WorkerId, run_id: &RunId) -> Applied {
    let now = now_ms();
    let sql = format!("SELECT queue FROM wf_runs WHERE run_id = ? AND {CLAIMABLE}");
    let queue: Option<String> = sqlx::query_scalar(&sql)
        .bind(run_id.as_str())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(queue) = queue else {
        return Ok(Ok(Reply::Claimed(Vec::new())));
    };
    let mut budget = QueueBudget::default();
    if !budget.take(tx, &queue, now).await? {
        return Ok(Ok(Reply::Claimed(Vec::new())));
    }
    budget.save(tx).await?;
    Ok(take_claim(tx, worker, run_id)
        .await?
        .map(|run| Reply::Claimed(vec![run])))
}

/// Takes a run whose row cannot be read out of the claimable set, for good: it is marked
/// failed with what is wrong (and no result checksum, so reading it still reports the damage)
/// instead of blocking every claim behind it.
async fn quarantine(
    tx: &mut SqliteConnection,
    rowid: i64,
    detail: &str,
) -> Result<(), sqlx::Error> {
    tracing::error!(
        rowid,
        detail,
        "unreadable run row taken out of the claimable runs"
    );
    sqlx::query(
        "UPDATE wf_runs SET status = 'failed', owner = NULL, result_checksum = NULL,
           error = ? WHERE rowid = ?",
    )
    .bind(format!("unreadable run row: {detail}"))
    .bind(rowid)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Marks one claimable run claimed by `worker` under a new epoch.
async fn take_claim(
    tx: &mut SqliteConnection,
    worker: &WorkerId,
    run_id: &RunId,
) -> Result<Result<ClaimedRun, StoreError>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE wf_runs SET status = 'claimed', owner = ?, epoch = epoch + 1, claims = claims + 1,
           wake_at = NULL, waiting_for = NULL WHERE run_id = ? RETURNING *",
    )
    .bind(worker.as_str())
    .bind(run_id.as_str())
    .fetch_one(&mut *tx)
    .await?;
    Ok(run_record(&row).map(|run| ClaimedRun {
        claim: Claim {
            run_id: run_id.clone(),
            worker: worker.clone(),
            epoch: run.summary.epoch,
        },
        run,
    }))
}

/// What the queues touched by one claim still allow: concurrency slots and GCRA tokens.
#[derive(Default)]
struct QueueBudget {
    queues: std::collections::HashMap<String, QueueLimits>,
}

/// One queue's budget during a claim (`None`: unlimited).
struct QueueLimits {
    slots_left: Option<i64>,
    rate: Option<RateBudget>,
}

/// A rate-limited queue: its stored GCRA state and the claims taken so far.
struct RateBudget {
    rate: f64,
    burst: u32,
    tat: f64,
    now: f64,
    allowed: u32,
    used: u32,
}

impl QueueBudget {
    /// Takes one run's worth of the queue's budget; false when the queue is full.
    async fn take(
        &mut self,
        tx: &mut SqliteConnection,
        queue: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        if !self.queues.contains_key(queue) {
            let limits = load_limits(tx, queue, now).await?;
            self.queues.insert(queue.to_owned(), limits);
        }
        let Some(limits) = self.queues.get_mut(queue) else {
            return Ok(true);
        };
        let full = limits.slots_left.is_some_and(|s| s <= 0)
            || limits.rate.as_ref().is_some_and(|r| r.used >= r.allowed);
        if full {
            return Ok(false);
        }
        if let Some(slots) = &mut limits.slots_left {
            *slots -= 1;
        }
        if let Some(rate) = &mut limits.rate {
            rate.used += 1;
        }
        Ok(true)
    }

    /// Stores the GCRA time of every rate-limited queue, advanced by the claims it allowed.
    async fn save(&self, tx: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        for (queue, limits) in &self.queues {
            let Some(rate) = &limits.rate else { continue };
            let (_, tat) = gcra_allow(rate.now, rate.tat, rate.rate, rate.burst, rate.used);
            sqlx::query("UPDATE wf_queues SET tat = ? WHERE queue = ?")
                .bind(tat.ceil() as i64)
                .bind(queue)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }
}

/// Reads a queue's limits and how much of them is in use now.
async fn load_limits(
    tx: &mut SqliteConnection,
    queue: &str,
    now: i64,
) -> Result<QueueLimits, sqlx::Error> {
    let row =
        sqlx::query("SELECT concurrency, rate_per_sec, burst, tat FROM wf_queues WHERE queue = ?")
            .bind(queue)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(row) = row else {
        return Ok(QueueLimits {
            slots_left: None,
            rate: None,
        });
    };
    let slots_left = match row.try_get::<Option<i64>, _>("concurrency")? {
        Some(limit) => {
            let busy: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM wf_runs WHERE queue = ? AND status = 'claimed'",
            )
            .bind(queue)
            .fetch_one(&mut *tx)
            .await?;
            Some(limit - busy)
        }
        None => None,
    };
    let rate = match row.try_get::<Option<f64>, _>("rate_per_sec")? {
        Some(rate) => {
            let burst = row.try_get::<i64, _>("burst")?.max(1) as u32;
            let tat = row.try_get::<i64, _>("tat")? as f64;
            let now = now as f64;
            let (allowed, _) = gcra_allow(now, tat, rate, burst, u32::MAX);
            Some(RateBudget {
                rate,
                burst,
                tat,
                now,
                allowed,
                used: 0,
            })
        }
        None => None,
    };
    Ok(QueueLimits { slots_left, rate })
}

/// Checks that `claim` still owns its run; `Err(LeaseLost)` when the epoch moved on.
async fn fence(
    tx: &mut SqliteConnection,
    claim: &Claim,
) -> Result<Result<FenceRow, StoreError>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT signal_seq, cancel_requested FROM wf_runs
         WHERE run_id = ? AND epoch = ? AND owner = ? AND status = 'claimed'",
    )
    .bind(claim.run_id.as_str())
    .bind(claim.epoch as i64)
    .bind(claim.worker.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    Ok(match row {
        Some(row) => Ok(FenceRow {
            signal_seq: row.try_get::<i64, _>("signal_seq")? as u64,
            cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
        }),
        None => Err(StoreError::LeaseLost {
            run_id: claim.run_id.clone(),
            epoch: claim.epoch,
        }),
    })
}

struct FenceRow {
    signal_seq: u64,
    cancel_requested: bool,
}

/// Inserts a journal record; with `fenced`, only if `claim` still owns the run (in the same
/// statement). Returns whether the record was inserted.
async fn insert_record(
    tx: &mut SqliteConnection,
    claim: &Claim,
    record: &JournalRecord,
    fenced: bool,
) -> Result<bool, sqlx::Error> {
    let row = record.event.encode();
    let fence = if fenced {
        "WHERE EXISTS (SELECT 1 FROM wf_runs WHERE run_id = ?1 AND epoch = ?7 AND owner = ?9
           AND status = 'claimed')"
    } else {
        "WHERE ?9 IS NOT NULL"
    };
    let sql = format!(
        "INSERT INTO wf_journal (run_id, seq, kind, step, item, payload, epoch, checksum)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 {fence}"
    );
    let inserted = sqlx::query(&sql)
        .bind(claim.run_id.as_str())
        .bind(record.seq as i64)
        .bind(&row.kind)
        .bind(&row.step)
        .bind(row.item.map(|i| i as i64))
        .bind(&row.payload)
        .bind(claim.epoch as i64)
        .bind(record_checksum(&claim.run_id, record.seq, &row))
        .bind(claim.worker.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    Ok(inserted == 1)
}

async fn consume_signal(
    tx: &mut SqliteConnection,
    claim: &Claim,
    seq: u64,
    step: &str,
    name: &str,
) -> Applied {
    if let Err(lost) = fence(tx, claim).await? {
        return Ok(Err(lost));
    }
    let next = sqlx::query("SELECT seq, payload FROM wf_signals WHERE run_id = ? AND name = ? AND consumed = 0 ORDER BY seq LIMIT 1")
        .bind(claim.run_id.as_str())
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(row) = next else {
        return Ok(Ok(Reply::Payload(None)));
    };
    let signal_seq: i64 = row.try_get("seq")?;
    let payload: Vec<u8> = row.try_get("payload")?;
    sqlx::query("UPDATE wf_signals SET consumed = 1 WHERE run_id = ? AND name = ? AND seq = ?")
        .bind(claim.run_id.as_str())
        .bind(name)
        .bind(signal_seq)
        .execute(&mut *tx)
        .await?;
    let record = JournalRecord {
        seq,
        event: JournalEvent::SignalConsumed {
            step: step.to_owned(),
            payload: payload.clone(),
        },
    };
    insert_record(tx, claim, &record, false).await?;
    Ok(Ok(Reply::Payload(Some(payload))))
}

async fn park_run(tx: &mut SqliteConnection, claim: &Claim, park: &Park) -> Applied {
    let fenced = match fence(tx, claim).await? {
        Ok(row) => row,
        Err(lost) => return Ok(Err(lost)),
    };
    if fenced.signal_seq != park.seen_signal_seq || fenced.cancel_requested {
        return Ok(Ok(Reply::Parked(Parked::Woken {
            signal_seq: fenced.signal_seq,
        })));
    }
    sqlx::query(
        "UPDATE wf_runs SET status = 'waiting', owner = NULL, epoch = epoch + 1, wake_at = ?,
           waiting_for = ? WHERE run_id = ?",
    )
    .bind(park.wake_at.map(to_ms))
    .bind(&park.waiting_for)
    .bind(claim.run_id.as_str())
    .execute(&mut *tx)
    .await?;
    Ok(Ok(Reply::Parked(Parked::Parked)))
}

/// Reads a column, reporting an undecodable value as a corrupt run row.
fn column<'r, T>(row: &'r SqliteRow, run_id: &RunId, name: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(name).map_err(|e| StoreError::Corrupt {
        run_id: run_id.clone(),
        seq: None,
        detail: format!("column `{name}`: {e}"),
    })
}

fn run_summary(row: &SqliteRow) -> Result<(RunSummary, i64), StoreError> {
    let run_id = match row.try_get::<String, _>("run_id") {
        Ok(id) => RunId::from(id),
        Err(e) => {
            let raw: Vec<u8> = row.try_get_unchecked("run_id").unwrap_or_default();
            return Err(StoreError::Corrupt {
                run_id: RunId::from(String::from_utf8_lossy(&raw).into_owned()),
                seq: None,
                detail: format!("the run id does not decode: {e}"),
            });
        }
    };
    let status: String = column(row, &run_id, "status")?;
    let status = RunStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
        run_id: run_id.clone(),
        seq: None,
        detail: format!("unknown run status `{status}`"),
    })?;
    let owner: Option<String> = column(row, &run_id, "owner")?;
    let summary = RunSummary {
        workflow: column(row, &run_id, "workflow")?,
        version: column::<i64>(row, &run_id, "version")? as u32,
        definition_hash: column::<i64>(row, &run_id, "definition_hash")? as u64,
        queue: column(row, &run_id, "queue")?,
        status,
        owner: owner.map(WorkerId::from),
        epoch: column::<i64>(row, &run_id, "epoch")? as u64,
        wake_at: column::<Option<i64>>(row, &run_id, "wake_at")?.map(from_ms),
        waiting_for: column(row, &run_id, "waiting_for")?,
        signal_seq: column::<i64>(row, &run_id, "signal_seq")? as u64,
        cancel_requested: column::<i64>(row, &run_id, "cancel_requested")? != 0,
        deadline_at: column::<Option<i64>>(row, &run_id, "deadline_at")?.map(from_ms),
        claims: column::<i64>(row, &run_id, "claims")? as u32,
        created_seq: column::<i64>(row, &run_id, "created_seq")? as u64,
        run_id,
    };
    let deadline: Option<i64> = column(row, &summary.run_id, "deadline_at")?;
    Ok((summary, deadline.unwrap_or(-1)))
}

/// A run row with its payloads, both checksums verified.
fn run_record(row: &SqliteRow) -> Result<RunRecord, StoreError> {
    let (summary, _) = run_summary(row)?;
    let run_id = summary.run_id.clone();
    let corrupt = |detail: &str| StoreError::Corrupt {
        run_id: run_id.clone(),
        seq: None,
        detail: detail.to_owned(),
    };
    let record = RunRecord {
        input: column(row, &run_id, "input")?,
        output: column(row, &run_id, "output")?,
        error: column(row, &run_id, "error")?,
        summary,
    };
    let new = NewRun {
        run_id: run_id.clone(),
        workflow: record.summary.workflow.clone(),
        version: record.summary.version,
        definition_hash: record.summary.definition_hash,
        queue: record.summary.queue.clone(),
        deadline_at: None,
        input: record.input.clone(),
    };
    let deadline = column::<Option<i64>>(row, &run_id, "deadline_at")?.map(|d| d as u64);
    if column::<i64>(row, &run_id, "checksum")? != run_checksum(&new, deadline) {
        return Err(corrupt(
            "checksum mismatch: the run's input or identity was altered",
        ));
    }
    if record.summary.status.is_finished() {
        let stored: Option<i64> = column(row, &run_id, "result_checksum")?;
        let expected = result_checksum(
            &run_id,
            record.summary.status,
            record.output.as_deref(),
            record.error.as_deref(),
        );
        if stored != Some(expected) {
            return Err(corrupt("checksum mismatch: the run's result was altered"));
        }
    }
    Ok(record)
}

fn journal_record(run_id: &RunId, row: &SqliteRow) -> Result<JournalRecord, StoreError> {
    let get = |e: sqlx::Error| StoreError::Database(e.to_string());
    let seq = row.try_get::<i64, _>("seq").map_err(get)? as u64;
    let corrupt = |detail: String| StoreError::Corrupt {
        run_id: run_id.clone(),
        seq: Some(seq),
        detail,
    };
    let column_error = |e: sqlx::Error| corrupt(e.to_string());
    let encoded = EncodedEvent {
        kind: row.try_get("kind").map_err(column_error)?,
        step: row.try_get("step").map_err(column_error)?,
        item: row
            .try_get::<Option<i64>, _>("item")
            .map_err(column_error)?
            .map(|i| i as u64),
        payload: row.try_get("payload").map_err(column_error)?,
    };
    let stored: i64 = row.try_get("checksum").map_err(column_error)?;
    if stored != record_checksum(run_id, seq, &encoded) {
        return Err(corrupt(
            "checksum mismatch: the record was altered or truncated".into(),
        ));
    }
    let event = JournalEvent::decode(encoded).map_err(|e| corrupt(e.0))?;
    Ok(JournalRecord { seq, event })
}

impl Store for SqliteStore {
    fn create_run<'a>(&'a self, run: &'a NewRun) -> BoxFuture<'a, Result<RunRecord, StoreError>> {
        Box::pin(async move {
            match self.write(Op::CreateRun(run.clone())).await? {
                Reply::Run(record) => Ok(*record),
                _ => Err(unexpected("create_run")),
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

    fn list<'a>(&'a self, filter: &'a RunFilter) -> BoxFuture<'a, Result<RunPage, StoreError>> {
        Box::pin(async move {
            let limit = if filter.limit == 0 {
                1000
            } else {
                filter.limit
            };
            let rows = sqlx::query(
                "SELECT run_id, workflow, version, definition_hash, queue, status, owner, epoch,
                   wake_at, waiting_for, signal_seq, cancel_requested, deadline_at, claims, created_seq
                 FROM wf_runs
                 WHERE created_seq > ? AND (? IS NULL OR status = ?) AND (? IS NULL OR workflow = ?)
                   AND (? IS NULL OR queue = ?)
                 ORDER BY created_seq LIMIT ?",
            )
            .bind(filter.after.map_or(0, |a| a as i64))
            .bind(filter.status.map(RunStatus::as_str))
            .bind(filter.status.map(RunStatus::as_str))
            .bind(&filter.workflow)
            .bind(&filter.workflow)
            .bind(&filter.queue)
            .bind(&filter.queue)
            .bind(i64::from(limit))
            .fetch_all(&mut *self.reader().await)
            .await
            .map_err(db)?;
            let (mut runs, mut unreadable) = (Vec::new(), Vec::new());
            let mut last_seq = None;
            for row in &rows {
                last_seq = row.try_get::<i64, _>("created_seq").ok().or(last_seq);
                match run_summary(row) {
                    Ok((summary, _)) => runs.push(summary),
                    Err(error) => unreadable.push(error),
                }
            }
            let next = (rows.len() == limit as usize)
                .then(|| last_seq.map(|s| s as u64))
                .flatten();
            Ok(RunPage {
                runs,
                next,
                unreadable,
            })
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
                    seq: Some(record.seq),
                    detail: format!("journal gap: expected record #{i}"),
                });
            }
            Ok(records)
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

    fn request_cancel<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<RunStatus, StoreError>> {
        Box::pin(async move {
            match self.write(Op::RequestCancel(run_id.clone())).await? {
                Reply::Status(status) => Ok(status),
                _ => Err(unexpected("request_cancel")),
            }
        })
    }

    fn set_queue<'a>(&'a self, config: &'a QueueConfig) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { self.write(Op::SetQueue(config.clone())).await.map(drop) })
    }

    fn register_worker<'a>(
        &'a self,
        registration: &'a WorkerRegistration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.write(Op::RegisterWorker(registration.clone()))
                .await
                .map(drop)
        })
    }

    fn heartbeat<'a>(
        &'a self,
        worker: &'a WorkerId,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<RunId>, StoreError>> {
        Box::pin(async move {
            match self.write(Op::Heartbeat(worker.clone(), lease)).await? {
                Reply::RunIds(ids) => Ok(ids),
                _ => Err(unexpected("heartbeat")),
            }
        })
    }

    fn deregister_worker<'a>(
        &'a self,
        worker: &'a WorkerId,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.write(Op::DeregisterWorker(worker.clone()))
                .await
                .map(drop)
        })
    }

    fn list_workers(&self) -> BoxFuture<'_, Result<Vec<WorkerId>, StoreError>> {
        Box::pin(async move {
            let ids: Vec<String> = sqlx::query_scalar("SELECT worker_id FROM wf_workers")
                .fetch_all(&mut *self.reader().await)
                .await
                .map_err(db)?;
            Ok(ids.into_iter().map(WorkerId::from).collect())
        })
    }

    fn reap_expired(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            match self.write(Op::Reap).await? {
                Reply::Count(n) => Ok(n),
                _ => Err(unexpected("reap_expired")),
            }
        })
    }

    fn claim<'a>(
        &'a self,
        worker: &'a WorkerId,
        request: &'a ClaimRequest,
    ) -> BoxFuture<'a, Result<Vec<ClaimedRun>, StoreError>> {
        Box::pin(async move {
            // A read first: an idle worker polling an empty store takes no write lock.
            let sql = format!("SELECT 1 FROM wf_runs WHERE {CLAIMABLE} LIMIT 1");
            let any: Option<i64> = sqlx::query_scalar(&sql)
                .bind(now_ms())
                .fetch_optional(&mut *self.reader().await)
                .await
                .map_err(db)?;
            if any.is_none() {
                return Ok(Vec::new());
            }
            match self
                .write(Op::Claim(worker.clone(), request.clone()))
                .await?
            {
                Reply::Claimed(runs) => Ok(runs),
                _ => Err(unexpected("claim")),
            }
        })
    }

    fn claim_run<'a>(
        &'a self,
        worker: &'a WorkerId,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Option<ClaimedRun>, StoreError>> {
        Box::pin(async move {
            match self
                .write(Op::ClaimRun(worker.clone(), run_id.clone()))
                .await?
            {
                Reply::Claimed(runs) => Ok(runs.into_iter().next()),
                _ => Err(unexpected("claim_run")),
            }
        })
    }

    fn append<'a>(
        &'a self,
        claim: &'a Claim,
        records: Vec<JournalRecord>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.write(Op::Append(claim.clone(), records))
                .await
                .map(drop)
        })
    }

    fn consume_signal<'a>(
        &'a self,
        claim: &'a Claim,
        seq: u64,
        step: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move {
            let op = Op::ConsumeSignal(claim.clone(), seq, step.to_owned(), name.to_owned());
            match self.write(op).await? {
                Reply::Payload(payload) => Ok(payload),
                _ => Err(unexpected("consume_signal")),
            }
        })
    }

    fn set_waiting<'a>(
        &'a self,
        claim: &'a Claim,
        waiting_for: Option<String>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.write(Op::SetWaiting(claim.clone(), waiting_for))
                .await
                .map(drop)
        })
    }

    fn park<'a>(
        &'a self,
        claim: &'a Claim,
        park: &'a Park,
    ) -> BoxFuture<'a, Result<Parked, StoreError>> {
        Box::pin(async move {
            match self.write(Op::Park(claim.clone(), park.clone())).await? {
                Reply::Parked(parked) => Ok(parked),
                _ => Err(unexpected("park")),
            }
        })
    }

    fn release<'a>(&'a self, claim: &'a Claim) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { self.write(Op::Release(claim.clone())).await.map(drop) })
    }

    fn finish<'a>(
        &'a self,
        claim: &'a Claim,
        end: &'a RunEnd,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.write(Op::Finish(claim.clone(), end.clone()))
                .await
                .map(drop)
        })
    }
}

fn unexpected(what: &str) -> StoreError {
    StoreError::Database(format!("internal error: unexpected reply to {what}"))
}
