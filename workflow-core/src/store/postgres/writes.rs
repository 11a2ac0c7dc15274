//! The writes of the PostgreSQL store, run by the writer task: one transaction per batch of
//! requests. Each request checks what it needs (the claim's epoch, the run's status) in the
//! statement that writes, or before it writes, so a refused request leaves nothing behind.

use std::collections::BTreeSet;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Row;

use super::queue_budget::QueueBudget;
use super::reads::run_record;
use super::{claimable, connect_once, db, lease_ms, FENCE, LIVE, NOTIFY_CHANNEL, NOW_MS};
use crate::journal::JournalEvent;
use crate::run_id::RunId;
use crate::store::checksum::{record_checksum, result_checksum, run_checksum};
use crate::store::writer::{to_ms, Applied, Job, Op, Reply};
use crate::store::{
    Claim, ClaimRequest, ClaimedRun, JournalRecord, NewRun, Park, Parked, RunStatus, StoreError,
    WorkerId,
};

/// Attempts of a batch that hit a broken connection, a deadlock or a serialization failure.
const WRITE_ATTEMPTS: u32 = 8;
/// How long one batch may take before its connection is given up as hung.
const BATCH_TIMEOUT: Duration = Duration::from_secs(30);

/// The writer task's connection, opened again (with these options) whenever it broke.
pub(super) struct WriterConnection {
    pub options: PgConnectOptions,
    pub conn: Option<PgConnection>,
}

/// What a failed statement means for the batch it ran in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    /// The connection is gone (or the server is shutting it down): open another one.
    Connection,
    /// A deadlock or serialization failure: the transaction was aborted; run it again.
    Retry,
    /// Anything else: the statement failed (a unique violation, a bad value...).
    Statement,
}

pub(super) fn classify(error: &sqlx::Error) -> Failure {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Failure::Connection,
        sqlx::Error::Database(e) => match e.code().as_deref() {
            // Connection exceptions; admin / crash shutdown (pg_terminate_backend), cannot
            // connect now (the server is starting or stopping).
            Some(code) if code.starts_with("08") => Failure::Connection,
            Some("57P01" | "57P02" | "57P03") => Failure::Connection,
            // Deadlock, serialization failure, lock not available.
            Some("40P01" | "40001" | "55P03") => Failure::Retry,
            _ => Failure::Statement,
        },
        _ => Failure::Statement,
    }
}

/// Why a batch did not commit.
enum BatchError {
    /// A request failed in the database outside a savepoint (the transaction was rolled
    /// back): run the batch again with a savepoint per request.
    NeedSavepoints,
    /// A statement failed; `at_commit`: it was the COMMIT, whose outcome is then unknown.
    Sql { error: sqlx::Error, at_commit: bool },
}

/// Runs a batch in one transaction; again on a fresh connection when the connection broke
/// before the commit, and again after a deadlock.
pub(super) async fn run_batch(
    writer: &mut WriterConnection,
    batch: &[Job],
) -> Vec<Result<Reply, StoreError>> {
    let WriterConnection { options, conn } = writer;
    let fail_all = |text: String| {
        batch
            .iter()
            .map(|_| Err(StoreError::Database(text.clone())))
            .collect::<Vec<_>>()
    };
    let backoff = |attempt: u32| Duration::from_millis((10u64 << attempt.min(7)).min(1_000));
    let mut savepoints = false;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let connection = match conn {
            Some(connection) => connection,
            None => match connect_once(options).await {
                Ok(fresh) => conn.insert(fresh),
                Err(e) if attempt < WRITE_ATTEMPTS => {
                    tracing::warn!(error = %e, attempt, "store writer cannot reconnect; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(e) => return fail_all(format!("cannot reach the database: {e}")),
            },
        };
        let mut committing = false;
        let outcome = tokio::time::timeout(
            BATCH_TIMEOUT,
            try_batch(connection, batch, savepoints, &mut committing),
        )
        .await;
        let (error, at_commit) = match outcome {
            Ok(Ok(results)) => return results,
            Ok(Err(BatchError::NeedSavepoints)) => {
                savepoints = true;
                attempt -= 1;
                continue;
            }
            Ok(Err(BatchError::Sql { error, at_commit })) => (error, at_commit),
            Err(_) => {
                // Hung: give the connection up; the server rolls back what it did not commit.
                *conn = None;
                if committing {
                    return fail_all(format!(
                        "no answer to COMMIT within {} s: the writes may or may not be committed",
                        BATCH_TIMEOUT.as_secs()
                    ));
                }
                if attempt < WRITE_ATTEMPTS {
                    continue;
                }
                return fail_all("the database does not answer".into());
            }
        };
        match classify(&error) {
            Failure::Connection => {
                *conn = None;
                if at_commit {
                    return fail_all(format!(
                        "the connection broke during COMMIT: the writes may or may not be committed: {error}"
                    ));
                }
                tracing::warn!(%error, attempt, "store writer lost its connection; retrying the batch");
            }
            Failure::Retry => {
                if let Some(connection) = conn.as_mut() {
                    if sqlx::query("ROLLBACK")
                        .execute(&mut *connection)
                        .await
                        .is_err()
                    {
                        *conn = None;
                    }
                }
            }
            Failure::Statement => {
                if let Some(connection) = conn.as_mut() {
                    if sqlx::query("ROLLBACK")
                        .execute(&mut *connection)
                        .await
                        .is_err()
                    {
                        *conn = None;
                    }
                }
                return fail_all(error.to_string());
            }
        }
        if attempt >= WRITE_ATTEMPTS {
            return fail_all(error.to_string());
        }
        tokio::time::sleep(backoff(attempt)).await;
    }
}

/// Runs every request of the batch in one transaction and commits it. Without `savepoints`, a
/// request failing in the database aborts the attempt ([`BatchError::NeedSavepoints`]); with
/// them, it is rolled back alone and the others commit.
async fn try_batch(
    conn: &mut PgConnection,
    batch: &[Job],
    savepoints: bool,
    committing: &mut bool,
) -> Result<Vec<Result<Reply, StoreError>>, BatchError> {
    let sql = |error| BatchError::Sql {
        error,
        at_commit: false,
    };
    sqlx::query("BEGIN")
        .execute(&mut *conn)
        .await
        .map_err(sql)?;
    let mut results = Vec::with_capacity(batch.len());
    let mut notify: Vec<String> = Vec::new();
    for job in batch {
        if savepoints {
            sqlx::query("SAVEPOINT job")
                .execute(&mut *conn)
                .await
                .map_err(sql)?;
        }
        let mark = notify.len();
        let result = match apply(conn, &job.op, &mut notify).await {
            Ok(Ok(reply)) => Ok(reply),
            // Logical refusals (LeaseLost, UnknownRun...) are decided before a request writes
            // anything, so they need no rollback.
            Ok(Err(refused)) => Err(refused),
            Err(e) if classify(&e) != Failure::Statement => return Err(sql(e)),
            Err(e) if !savepoints => {
                sqlx::query("ROLLBACK")
                    .execute(&mut *conn)
                    .await
                    .map_err(sql)?;
                if batch.len() == 1 {
                    return Ok(vec![Err(db(e))]);
                }
                return Err(BatchError::NeedSavepoints);
            }
            Err(e) => {
                sqlx::query("ROLLBACK TO SAVEPOINT job")
                    .execute(&mut *conn)
                    .await
                    .map_err(sql)?;
                Err(db(e))
            }
        };
        if result.is_err() {
            notify.truncate(mark);
        }
        if savepoints {
            sqlx::query("RELEASE SAVEPOINT job")
                .execute(&mut *conn)
                .await
                .map_err(sql)?;
        }
        results.push(result);
    }
    if !notify.is_empty() {
        notify.sort();
        notify.dedup();
        sqlx::query("SELECT pg_notify($1, id) FROM UNNEST($2::TEXT[]) AS id")
            .bind(NOTIFY_CHANNEL)
            .bind(&notify)
            .execute(&mut *conn)
            .await
            .map_err(sql)?;
    }
    *committing = true;
    sqlx::query("COMMIT")
        .execute(&mut *conn)
        .await
        .map_err(|error| BatchError::Sql {
            error,
            at_commit: true,
        })?;
    Ok(results)
}

/// Applies one write inside the batch's transaction. Runs to notify go in `notify`.
async fn apply(conn: &mut PgConnection, op: &Op, notify: &mut Vec<String>) -> Applied {
    match op {
        Op::CreateRun(run) => create_run(conn, run, notify).await,
        Op::Reopen(run_id, rewound) => reopen(conn, run_id, rewound, notify).await,
        Op::Purge(before, limit) => purge(conn, *before, *limit).await,
        Op::Audit(record) => {
            sqlx::query(
                "INSERT INTO wf_audit (at, who, action, run_id, detail) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(to_ms(record.at))
            .bind(&record.who)
            .bind(&record.action)
            .bind(record.run_id.as_ref().map(RunId::as_str))
            .bind(&record.detail)
            .execute(&mut *conn)
            .await?;
            Ok(Ok(Reply::Done))
        }
        Op::SendSignal(run_id, name, payload) => {
            send_signal(conn, run_id, name, payload, notify).await
        }
        Op::RequestCancel(run_id) => request_cancel(conn, run_id, notify).await,
        Op::PutDefinition(def) => {
            sqlx::query(
                "INSERT INTO wf_definitions (workflow, hash, version, canonical, signal_schemas)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (workflow, hash) DO UPDATE SET signal_schemas = excluded.signal_schemas",
            )
            .bind(&def.workflow)
            .bind(def.hash as i64)
            .bind(i64::from(def.version))
            .bind(&def.canonical)
            .bind(crate::store::records::schemas_column(def))
            .execute(&mut *conn)
            .await?;
            Ok(Ok(Reply::Done))
        }
        Op::SetQueue(config) => {
            sqlx::query(
                "INSERT INTO wf_queues (queue, concurrency, rate_per_sec, burst) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (queue) DO UPDATE SET concurrency = excluded.concurrency,
                   rate_per_sec = excluded.rate_per_sec, burst = excluded.burst",
            )
            .bind(&config.queue)
            .bind(config.concurrency.map(i64::from))
            .bind(config.rate_per_sec)
            .bind(i64::from(config.burst.max(1)))
            .execute(&mut *conn)
            .await?;
            Ok(Ok(Reply::Done))
        }
        Op::RegisterWorker(registration) => {
            let sql = format!(
                "INSERT INTO wf_workers (worker_id, lease_expires, started_at)
                 SELECT $1, now_ms + $2, now_ms FROM {NOW_MS} AS t(now_ms)
                 ON CONFLICT (worker_id) DO UPDATE SET lease_expires = excluded.lease_expires,
                   started_at = excluded.started_at"
            );
            sqlx::query(&sql)
                .bind(registration.worker.as_str())
                .bind(lease_ms(registration.lease))
                .execute(&mut *conn)
                .await?;
            Ok(Ok(Reply::Done))
        }
        Op::Heartbeat(worker, lease) => {
            let sql = format!(
                "WITH beat AS (UPDATE wf_workers SET lease_expires = {NOW_MS} + $2
                   WHERE worker_id = $1 RETURNING worker_id)
                 SELECT (SELECT COUNT(*) FROM beat) AS alive,
                   ARRAY(SELECT run_id FROM wf_runs WHERE owner = $1 AND status = 'claimed'
                     AND cancel_requested ORDER BY created_seq) AS cancelled"
            );
            let row = sqlx::query(&sql)
                .bind(worker.as_str())
                .bind(lease_ms(*lease))
                .fetch_one(&mut *conn)
                .await?;
            if row.try_get::<i64, _>("alive")? == 0 {
                return Ok(Err(StoreError::WorkerLost(worker.clone())));
            }
            let cancelled: Vec<String> = row.try_get("cancelled")?;
            Ok(Ok(Reply::RunIds(
                cancelled.into_iter().map(RunId::from).collect(),
            )))
        }
        Op::DeregisterWorker(worker) => {
            sqlx::query(
                "WITH gone AS (DELETE FROM wf_workers WHERE worker_id = $1)
                 UPDATE wf_runs SET status = 'ready', owner = NULL, epoch = epoch + 1, journal_len = (SELECT COUNT(*) FROM wf_journal j WHERE j.run_id = wf_runs.run_id)
                 WHERE owner = $1 AND status = 'claimed'",
            )
            .bind(worker.as_str())
            .execute(&mut *conn)
            .await?;
            Ok(Ok(Reply::Done))
        }
        Op::Reap => {
            // The DELETE's effect is not visible to the NOT EXISTS of the same statement,
            // hence both conditions.
            let sql = format!(
                "WITH dead AS (DELETE FROM wf_workers WHERE lease_expires < {NOW_MS}
                   RETURNING worker_id)
                 UPDATE wf_runs SET status = 'ready', owner = NULL, epoch = epoch + 1, journal_len = (SELECT COUNT(*) FROM wf_journal j WHERE j.run_id = wf_runs.run_id)
                 WHERE status = 'claimed'
                   AND (owner IN (SELECT worker_id FROM dead)
                     OR NOT EXISTS (SELECT 1 FROM wf_workers w WHERE w.worker_id = wf_runs.owner))"
            );
            let taken = sqlx::query(&sql).execute(&mut *conn).await?.rows_affected();
            Ok(Ok(Reply::Count(taken)))
        }
        Op::Claim(worker, request) => claim(conn, worker, request).await,
        Op::ClaimRun(worker, run_id) => claim_run(conn, worker, run_id).await,
        Op::Append(claim, records) => append(conn, claim, records).await,
        Op::ConsumeSignal(claim, seq, step, name) => {
            consume_signal(conn, claim, *seq, step, name).await
        }
        Op::SetWaiting(claim, waiting_for) => {
            let sql = format!("UPDATE wf_runs SET waiting_for = $4 WHERE {FENCE}");
            let updated = fenced(sqlx::query(&sql), claim)
                .bind(waiting_for)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            Ok(done_or_lost(updated, claim))
        }
        Op::Park(claim, park) => park_run(conn, claim, park).await,
        Op::Release(claim) => {
            let sql = format!(
                "UPDATE wf_runs SET status = 'ready', owner = NULL, epoch = epoch + 1, journal_len = (SELECT COUNT(*) FROM wf_journal j WHERE j.run_id = wf_runs.run_id) WHERE {FENCE}"
            );
            let updated = fenced(sqlx::query(&sql), claim)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            Ok(done_or_lost(updated, claim))
        }
        Op::Finish(claim, end) => {
            let sum = result_checksum(
                &claim.run_id,
                end.status,
                end.output.as_deref(),
                end.error.as_deref(),
            );
            let sql = format!(
                "UPDATE wf_runs SET status = $4, output = $5, error = $6, result_checksum = $7,
                   owner = NULL, epoch = epoch + 1, wake_at = NULL, waiting_for = NULL,
                   finished_at = {NOW_MS}
                 WHERE {FENCE}"
            );
            let updated = fenced(sqlx::query(&sql), claim)
                .bind(end.status.as_str())
                .bind(&end.output)
                .bind(&end.error)
                .bind(sum)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            Ok(done_or_lost(updated, claim))
        }
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Binds the fence's `$1` run, `$2` epoch and `$3` owner.
fn fenced<'q>(query: PgQuery<'q>, claim: &'q Claim) -> PgQuery<'q> {
    query
        .bind(claim.run_id.as_str())
        .bind(claim.epoch as i64)
        .bind(claim.worker.as_str())
}

fn lost(claim: &Claim) -> StoreError {
    StoreError::LeaseLost {
        run_id: claim.run_id.clone(),
        epoch: claim.epoch,
    }
}

fn done_or_lost(updated: u64, claim: &Claim) -> Result<Reply, StoreError> {
    if updated == 0 {
        Err(lost(claim))
    } else {
        Ok(Reply::Done)
    }
}

async fn create_run(conn: &mut PgConnection, run: &NewRun, notify: &mut Vec<String>) -> Applied {
    let deadline = run.deadline_at.map(to_ms);
    let inserted = sqlx::query(&format!(
        "INSERT INTO wf_runs (run_id, workflow, version, definition_hash, queue, status, deadline_at,
           input, checksum, created_at, trace_context)
         VALUES ($1, $2, $3, $4, $5, 'ready', $6, $7, $8, {NOW_MS}, $9)
         ON CONFLICT (run_id) DO NOTHING RETURNING *"
    ))
    .bind(run.run_id.as_str())
    .bind(&run.workflow)
    .bind(i64::from(run.version))
    .bind(run.definition_hash as i64)
    .bind(&run.queue)
    .bind(deadline)
    .bind(&run.input)
    .bind(run_checksum(run, deadline.map(|d| d as u64)))
    .bind(&run.trace_context)
    .fetch_optional(&mut *conn)
    .await?;
    let row = match inserted {
        Some(row) => {
            notify.push(run.run_id.as_str().to_owned());
            row
        }
        None => {
            sqlx::query("SELECT * FROM wf_runs WHERE run_id = $1")
                .bind(run.run_id.as_str())
                .fetch_one(&mut *conn)
                .await?
        }
    };
    Ok(run_record(&row).map(|r| Reply::Run(Box::new(r))))
}

/// `Store::purge`: deletes finished runs that ended before `before`, oldest first.
async fn purge(conn: &mut PgConnection, before: std::time::SystemTime, limit: u32) -> Applied {
    let deleted = sqlx::query(
        "WITH doomed AS (
           SELECT run_id FROM wf_runs WHERE finished_at < $1
             AND status IN ('completed', 'failed', 'cancelled')
           ORDER BY finished_at, run_id LIMIT $2 FOR UPDATE SKIP LOCKED),
         journal AS (DELETE FROM wf_journal WHERE run_id IN (SELECT run_id FROM doomed)),
         signals AS (DELETE FROM wf_signals WHERE run_id IN (SELECT run_id FROM doomed))
         DELETE FROM wf_runs WHERE run_id IN (SELECT run_id FROM doomed)",
    )
    .bind(to_ms(before))
    .bind(i64::from(limit))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(Ok(Reply::Count(deleted)))
}

/// `Store::reopen`: appends `rewound` to a finished run's journal and makes it ready; the
/// workers hear of it as of a new run.
async fn reopen(
    conn: &mut PgConnection,
    run_id: &RunId,
    rewound: &JournalEvent,
    notify: &mut Vec<String>,
) -> Applied {
    // The record goes after every record there is (`journal_len` is only brought up to date
    // when a run leaves a worker unfinished).
    let row: Option<(String, i64, i64)> = sqlx::query_as(
        "SELECT status, (SELECT COUNT(*) FROM wf_journal j WHERE j.run_id = r.run_id), epoch
         FROM wf_runs r WHERE run_id = $1 FOR UPDATE",
    )
    .bind(run_id.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some((status, len, epoch)) = row else {
        return Ok(Err(StoreError::UnknownRun(run_id.clone())));
    };
    let Some(status) = RunStatus::parse(&status) else {
        return Ok(Err(StoreError::Corrupt {
            run_id: run_id.clone(),
            seq: None,
            detail: format!("unknown run status `{status}`"),
        }));
    };
    if !status.is_finished() {
        return Ok(Err(StoreError::NotFinished {
            run_id: run_id.clone(),
            status,
        }));
    }
    let event = rewound.encode();
    sqlx::query(&format!(
        "WITH ins AS (
           INSERT INTO wf_journal (run_id, seq, kind, step, item, payload, epoch, checksum, at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, {NOW_MS}))
         UPDATE wf_runs SET status = 'ready', output = NULL, error = NULL, result_checksum = NULL,
           finished_at = NULL, owner = NULL, epoch = epoch + 1, wake_at = NULL, waiting_for = NULL,
           cancel_requested = FALSE, journal_len = $2 + 1 WHERE run_id = $1"
    ))
    .bind(run_id.as_str())
    .bind(len)
    .bind(&event.kind)
    .bind(&event.step)
    .bind(event.item.map(|i| i as i64))
    .bind(&event.payload)
    .bind(epoch)
    .bind(record_checksum(run_id, len as u64, &event))
    .execute(&mut *conn)
    .await?;
    notify.push(run_id.as_str().to_owned());
    Ok(Ok(Reply::Status(status)))
}

/// Why a command found no live run to change: it does not exist, or it finished.
async fn status_of(
    conn: &mut PgConnection,
    run_id: &RunId,
) -> Result<Option<Result<RunStatus, StoreError>>, sqlx::Error> {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM wf_runs WHERE run_id = $1")
        .bind(run_id.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(status.map(|text| {
        RunStatus::parse(&text).ok_or_else(|| StoreError::Corrupt {
            run_id: run_id.clone(),
            seq: None,
            detail: format!("unknown run status `{text}`"),
        })
    }))
}

/// Bumps the signal sequence of a live run (with `cancel`: asks it to cancel too) and makes a
/// parked one claimable now. Returns its status, `None` when no live run has that id. The
/// UPDATE locks the run's row: signals to one run are serialized by it.
async fn wake(
    conn: &mut PgConnection,
    run_id: &RunId,
    cancel: bool,
) -> Result<Option<String>, sqlx::Error> {
    let sql = format!(
        "UPDATE wf_runs SET signal_seq = signal_seq + 1,
           cancel_requested = cancel_requested OR $2,
           wake_at = CASE WHEN status = 'waiting' THEN {NOW_MS} ELSE wake_at END
         WHERE run_id = $1 AND status IN {LIVE} RETURNING status"
    );
    sqlx::query_scalar(&sql)
        .bind(run_id.as_str())
        .bind(cancel)
        .fetch_optional(&mut *conn)
        .await
}

async fn send_signal(
    conn: &mut PgConnection,
    run_id: &RunId,
    name: &str,
    payload: &[u8],
    notify: &mut Vec<String>,
) -> Applied {
    // Twice at most: a run created between the two statements is found the second time.
    for _ in 0..2 {
        if wake(conn, run_id, false).await?.is_some() {
            sqlx::query(
                "INSERT INTO wf_signals (run_id, name, seq, payload)
                 SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3 FROM wf_signals
                 WHERE run_id = $1 AND name = $2",
            )
            .bind(run_id.as_str())
            .bind(name)
            .bind(payload)
            .execute(&mut *conn)
            .await?;
            notify.push(run_id.as_str().to_owned());
            return Ok(Ok(Reply::Done));
        }
        match status_of(conn, run_id).await? {
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
    }
    Ok(Err(StoreError::UnknownRun(run_id.clone())))
}

async fn request_cancel(
    conn: &mut PgConnection,
    run_id: &RunId,
    notify: &mut Vec<String>,
) -> Applied {
    for _ in 0..2 {
        if let Some(status) = wake(conn, run_id, true).await? {
            notify.push(run_id.as_str().to_owned());
            return Ok(RunStatus::parse(&status).map(Reply::Status).ok_or_else(|| {
                StoreError::Corrupt {
                    run_id: run_id.clone(),
                    seq: None,
                    detail: format!("unknown run status `{status}`"),
                }
            }));
        }
        match status_of(conn, run_id).await? {
            None => return Ok(Err(StoreError::UnknownRun(run_id.clone()))),
            Some(Err(e)) => return Ok(Err(e)),
            Some(Ok(status)) if status.is_finished() => return Ok(Ok(Reply::Status(status))),
            Some(Ok(_)) => {}
        }
    }
    Ok(Err(StoreError::UnknownRun(run_id.clone())))
}

// ---- claims ----

async fn claim(conn: &mut PgConnection, worker: &WorkerId, request: &ClaimRequest) -> Applied {
    if request.definitions.is_empty() || request.limit == 0 {
        return Ok(Ok(Reply::Claimed(Vec::new())));
    }
    let (workflows, hashes) = definitions(request);
    // Candidates, oldest first, locked and skipped by concurrent claimers. Look past runs a
    // full queue holds back, but not without bound (as the SQLite store does). Ready runs and
    // due parked runs are two scans, each down its own index: one scan with an OR lets a
    // planner with stale statistics walk every parked run in creation order (measured: 50 ms
    // per claim beside 100,000 parked runs, against 0.3 ms).
    let sql = format!(
        "WITH ready AS (
           SELECT run_id, queue, created_seq FROM wf_runs
           WHERE status = 'ready' AND {DEFINED}
           ORDER BY created_seq LIMIT $3
           FOR UPDATE SKIP LOCKED),
         due AS (
           SELECT run_id, queue, created_seq FROM wf_runs
           WHERE status = 'waiting' AND wake_at <= {NOW_MS} AND {DEFINED}
           ORDER BY wake_at LIMIT $3
           FOR UPDATE SKIP LOCKED),
         cand AS (SELECT * FROM ready UNION ALL SELECT * FROM due)
         SELECT cand.run_id, cand.queue,
           (q.concurrency IS NOT NULL OR q.rate_per_sec IS NOT NULL) AS limited
         FROM cand LEFT JOIN wf_queues q ON q.queue = cand.queue
         ORDER BY cand.created_seq"
    );
    let rows = sqlx::query(&sql)
        .bind(&workflows)
        .bind(&hashes)
        .bind(i64::from(request.limit) * 4 + 16)
        .fetch_all(&mut *conn)
        .await?;
    let mut candidates = Vec::with_capacity(rows.len());
    let mut limited = BTreeSet::new();
    for row in &rows {
        let run_id: String = row.try_get("run_id")?;
        let queue: String = row.try_get("queue")?;
        if row.try_get::<Option<bool>, _>("limited")? == Some(true) {
            limited.insert(queue.clone());
        }
        candidates.push((run_id, queue));
    }
    let mut budget = QueueBudget::load(conn, &limited).await?;
    let mut chosen = Vec::new();
    for (run_id, queue) in candidates {
        if chosen.len() >= request.limit as usize {
            break;
        }
        if budget.take(&queue) {
            chosen.push(run_id);
        }
    }
    let claimed = take_claims(conn, worker, &chosen).await?;
    budget.save(conn).await?;
    Ok(Ok(Reply::Claimed(claimed)))
}

/// A claim's filter on the definitions it asked for (`$1`, `$2`: see [`definitions`]).
const DEFINED: &str =
    "(workflow, definition_hash) IN (SELECT * FROM UNNEST($1::TEXT[], $2::BIGINT[]))";

/// The definitions of a claim as two parallel arrays.
fn definitions(request: &ClaimRequest) -> (Vec<String>, Vec<i64>) {
    request
        .definitions
        .iter()
        .map(|d| (d.workflow.clone(), d.hash as i64))
        .unzip()
}

async fn claim_run(conn: &mut PgConnection, worker: &WorkerId, run_id: &RunId) -> Applied {
    let sql = format!(
        "SELECT * FROM wf_runs WHERE run_id = $1 AND {} FOR UPDATE",
        claimable()
    );
    let row = sqlx::query(&sql)
        .bind(run_id.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else {
        return Ok(Ok(Reply::Claimed(Vec::new())));
    };
    // A corrupt row is reported before anything is written.
    let run = match run_record(&row) {
        Ok(run) => run,
        Err(e) => return Ok(Err(e)),
    };
    let limited: Option<bool> = sqlx::query_scalar(
        "SELECT concurrency IS NOT NULL OR rate_per_sec IS NOT NULL FROM wf_queues WHERE queue = $1",
    )
    .bind(&run.summary.queue)
    .fetch_optional(&mut *conn)
    .await?;
    let queues = match limited {
        Some(true) => BTreeSet::from([run.summary.queue.clone()]),
        _ => BTreeSet::new(),
    };
    let mut budget = QueueBudget::load(conn, &queues).await?;
    if !budget.take(&run.summary.queue) {
        return Ok(Ok(Reply::Claimed(Vec::new())));
    }
    let claimed = take_claims(conn, worker, &[run_id.as_str().to_owned()]).await?;
    budget.save(conn).await?;
    Ok(Ok(Reply::Claimed(claimed)))
}

/// Marks the runs (locked, claimable) claimed by `worker` under a new epoch, oldest first. A
/// run whose row does not read back is taken out of the claimable runs for good (failed,
/// with what is wrong), as the SQLite store does, instead of blocking every claim behind it.
async fn take_claims(
    conn: &mut PgConnection,
    worker: &WorkerId,
    run_ids: &[String],
) -> Result<Vec<ClaimedRun>, sqlx::Error> {
    if run_ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(
        "UPDATE wf_runs SET status = 'claimed', owner = $1, epoch = epoch + 1, claims = claims + 1,
           wake_at = NULL, waiting_for = NULL
         WHERE run_id = ANY($2) AND status IN ('ready', 'waiting') RETURNING *",
    )
    .bind(worker.as_str())
    .bind(run_ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in &rows {
        match run_record(row) {
            Ok(run) => claimed.push(ClaimedRun {
                claim: Claim {
                    run_id: run.summary.run_id.clone(),
                    worker: worker.clone(),
                    epoch: run.summary.epoch,
                },
                run,
            }),
            Err(error) => {
                let run_id: String = row.try_get("run_id")?;
                quarantine(conn, &run_id, &error.to_string()).await?;
            }
        }
    }
    claimed.sort_by_key(|c| c.run.summary.created_seq);
    Ok(claimed)
}

/// Marks a run whose row cannot be read failed, with what is wrong (and no result checksum,
/// so reading it still reports the damage).
async fn quarantine(
    conn: &mut PgConnection,
    run_id: &str,
    detail: &str,
) -> Result<(), sqlx::Error> {
    tracing::error!(
        run_id,
        detail,
        "unreadable run row taken out of the claimable runs"
    );
    sqlx::query(&format!(
        "UPDATE wf_runs SET status = 'failed', owner = NULL, result_checksum = NULL, error = $2,
           finished_at = {NOW_MS} WHERE run_id = $1"
    ))
    .bind(run_id)
    .bind(format!("unreadable run row: {detail}"))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

// ---- fenced writes ----

/// Appends records in one statement: the fence (`FOR SHARE`, so a takeover waits for it) and
/// the inserts.
async fn append(conn: &mut PgConnection, claim: &Claim, records: &[JournalRecord]) -> Applied {
    let mut seqs = Vec::with_capacity(records.len());
    let mut kinds = Vec::with_capacity(records.len());
    let mut steps = Vec::with_capacity(records.len());
    let mut items = Vec::with_capacity(records.len());
    let mut payloads = Vec::with_capacity(records.len());
    let mut sums = Vec::with_capacity(records.len());
    for record in records {
        let row = record.event.encode();
        sums.push(record_checksum(&claim.run_id, record.seq, &row));
        seqs.push(record.seq as i64);
        kinds.push(row.kind);
        steps.push(row.step);
        items.push(row.item.map(|i| i as i64));
        payloads.push(row.payload);
    }
    let sql = format!(
        "WITH fence AS (SELECT run_id FROM wf_runs WHERE {FENCE} FOR SHARE),
         follows AS (
           SELECT COALESCE(($4::BIGINT[])[1] = 0 OR EXISTS (
             SELECT 1 FROM wf_journal WHERE run_id = $1 AND seq = ($4::BIGINT[])[1] - 1), TRUE)
             AS ok),
         ins AS (
           INSERT INTO wf_journal (run_id, seq, kind, step, item, payload, epoch, checksum, at)
           SELECT fence.run_id, r.seq, r.kind, r.step, r.item, r.payload, $2, r.checksum, {NOW_MS}
           FROM fence, follows, UNNEST($4::BIGINT[], $5::TEXT[], $6::TEXT[], $7::BIGINT[], $8::BYTEA[], $9::BIGINT[])
             AS r(seq, kind, step, item, payload, checksum)
           WHERE follows.ok
           RETURNING 1)
         SELECT (SELECT COUNT(*) FROM fence) AS owned, (SELECT ok FROM follows) AS follows,
           (SELECT COUNT(*) FROM ins) AS inserted"
    );
    let row = fenced(sqlx::query(&sql), claim)
        .bind(&seqs)
        .bind(&kinds)
        .bind(&steps)
        .bind(&items)
        .bind(&payloads)
        .bind(&sums)
        .fetch_one(&mut *conn)
        .await?;
    if row.try_get::<i64, _>("owned")? == 0 {
        return Ok(Err(lost(claim)));
    }
    if !row.try_get::<bool, _>("follows")? {
        return Ok(Err(StoreError::JournalGap {
            run_id: claim.run_id.clone(),
            seq: seqs[0] as u64,
        }));
    }
    Ok(Ok(Reply::Done))
}

async fn consume_signal(
    conn: &mut PgConnection,
    claim: &Claim,
    seq: u64,
    step: &str,
    name: &str,
) -> Applied {
    let sql = format!(
        "WITH fence AS (SELECT run_id FROM wf_runs WHERE {FENCE} FOR SHARE)
         SELECT (SELECT COUNT(*) FROM fence) AS owned, s.seq, s.payload
         FROM (SELECT 1) AS one LEFT JOIN LATERAL (
           SELECT seq, payload FROM wf_signals
           WHERE run_id = $1 AND name = $4 AND NOT consumed AND EXISTS (SELECT 1 FROM fence)
           ORDER BY seq LIMIT 1) AS s ON TRUE"
    );
    let row = fenced(sqlx::query(&sql), claim)
        .bind(name)
        .fetch_one(&mut *conn)
        .await?;
    if row.try_get::<i64, _>("owned")? == 0 {
        return Ok(Err(lost(claim)));
    }
    let Some(signal_seq) = row.try_get::<Option<i64>, _>("seq")? else {
        return Ok(Ok(Reply::Payload(None)));
    };
    let payload: Vec<u8> = row.try_get("payload")?;
    let event = JournalEvent::SignalConsumed {
        step: step.to_owned(),
        payload: payload.clone(),
    }
    .encode();
    sqlx::query(&format!(
        "WITH used AS (UPDATE wf_signals SET consumed = TRUE
           WHERE run_id = $1 AND name = $2 AND seq = $3)
         INSERT INTO wf_journal (run_id, seq, kind, step, item, payload, epoch, checksum, at)
         VALUES ($1, $4, $5, $6, $7, $8, $9, $10, {NOW_MS})"
    ))
    .bind(claim.run_id.as_str())
    .bind(name)
    .bind(signal_seq)
    .bind(seq as i64)
    .bind(&event.kind)
    .bind(&event.step)
    .bind(event.item.map(|i| i as i64))
    .bind(&event.payload)
    .bind(claim.epoch as i64)
    .bind(record_checksum(&claim.run_id, seq, &event))
    .execute(&mut *conn)
    .await?;
    Ok(Ok(Reply::Payload(Some(payload))))
}

/// Parks the run with a compare-and-swap on its signal sequence: a signal or cancel that
/// arrived since the worker looked (its UPDATE holds the row until it commits, after which
/// this one re-checks the row) leaves the run claimed and reports [`Parked::Woken`].
async fn park_run(conn: &mut PgConnection, claim: &Claim, park: &Park) -> Applied {
    let sql = format!(
        "UPDATE wf_runs SET status = 'waiting', owner = NULL, epoch = epoch + 1, journal_len = (SELECT COUNT(*) FROM wf_journal j WHERE j.run_id = wf_runs.run_id), wake_at = $5,
           waiting_for = $6
         WHERE {FENCE} AND signal_seq = $4 AND NOT cancel_requested"
    );
    let parked = fenced(sqlx::query(&sql), claim)
        .bind(park.seen_signal_seq as i64)
        .bind(park.wake_at.map(to_ms))
        .bind(&park.waiting_for)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if parked > 0 {
        return Ok(Ok(Reply::Parked(Parked::Parked)));
    }
    let sql = format!("SELECT signal_seq FROM wf_runs WHERE {FENCE}");
    let signal_seq: Option<i64> = sqlx::query_scalar(&sql)
        .bind(claim.run_id.as_str())
        .bind(claim.epoch as i64)
        .bind(claim.worker.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match signal_seq {
        Some(signal_seq) => Ok(Reply::Parked(Parked::Woken {
            signal_seq: signal_seq as u64,
        })),
        None => Err(lost(claim)),
    })
}
