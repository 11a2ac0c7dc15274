//! The writes of the SQLite store, run by the writer task in `BEGIN IMMEDIATE` transactions:
//! each request checks what it needs (the claim's epoch, the run's status) before it writes.

use std::time::{Duration, SystemTime};

use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, Row};

use super::queue_budget::QueueBudget;
use super::reads::run_record;
use crate::journal::JournalEvent;
use crate::run_id::RunId;
use crate::store::checksum::{record_checksum, result_checksum, run_checksum};
use crate::store::writer::{to_ms, Applied, Job, Op, Reply};
use crate::store::{
    Claim, ClaimRequest, ClaimedRun, JournalRecord, NewRun, Park, Parked, RunStatus, StoreError,
    WorkerId,
};

/// Attempts of a batch whose transaction found the database busy or locked.
pub(super) const BUSY_ATTEMPTS: u32 = 8;

pub(super) fn db(error: sqlx::Error) -> StoreError {
    StoreError::Database(error.to_string())
}

/// True for errors that go away on their own: another connection holds the write lock.
pub(super) fn is_transient(error: &sqlx::Error) -> bool {
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

pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Runs a batch in one transaction, retrying it while the database is busy. Each request runs
/// in a savepoint: a request that fails is rolled back alone and the others still commit.
pub(super) async fn run_batch(
    conn: &mut SqliteConnection,
    batch: &[Job],
) -> Vec<Result<Reply, StoreError>> {
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

/// Applies one write inside the batch's transaction.
async fn apply(tx: &mut SqliteConnection, op: &Op) -> Applied {
    match op {
        Op::CreateRun(run) => create_run(tx, run).await,
        Op::Reopen(run_id, rewound) => reopen(tx, run_id, rewound).await,
        Op::Purge(before, limit) => purge(tx, *before, *limit).await,
        Op::Audit(record) => {
            sqlx::query(
                "INSERT INTO wf_audit (at, who, action, run_id, detail) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(to_ms(record.at))
            .bind(&record.who)
            .bind(&record.action)
            .bind(record.run_id.as_ref().map(RunId::as_str))
            .bind(&record.detail)
            .execute(&mut *tx)
            .await?;
            Ok(Ok(Reply::Done))
        }
        Op::SendSignal(run_id, name, payload) => send_signal(tx, run_id, name, payload).await,
        Op::RequestCancel(run_id) => request_cancel(tx, run_id).await,
        Op::PutDefinition(def) => {
            sqlx::query(
                "INSERT INTO wf_definitions (workflow, hash, version, canonical, signal_schemas)
                 VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (workflow, hash) DO UPDATE SET signal_schemas = excluded.signal_schemas",
            )
            .bind(&def.workflow)
            .bind(def.hash as i64)
            .bind(i64::from(def.version))
            .bind(&def.canonical)
            .bind(crate::store::records::schemas_column(def))
            .execute(&mut *tx)
            .await?;
            Ok(Ok(Reply::Done))
        }
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
            sqlx::query("UPDATE wf_runs SET status = 'ready', owner = NULL, epoch = epoch + 1, journal_len = (SELECT COUNT(*) FROM wf_journal j WHERE j.run_id = wf_runs.run_id) WHERE owner = ? AND status = 'claimed'")
                .bind(worker.as_str())
                .execute(&mut *tx)
                .await?;
            Ok(Ok(Reply::Done))
        }
        Op::Reap => reap(tx).await,
        Op::Claim(worker, request) => claim(tx, worker, request).await,
        Op::ClaimRun(worker, run_id) => claim_run(tx, worker, run_id).await,
        Op::Append(claim, records) => {
            // The first insert checks the claim and that the record before it is there, in
            // one statement; when it inserts nothing, a second look tells which failed.
            for (i, record) in records.iter().enumerate() {
                if !insert_record(tx, claim, record, i == 0).await? {
                    return Ok(Err(match fence(tx, claim).await? {
                        Err(lost) => lost,
                        Ok(_) => StoreError::JournalGap {
                            run_id: claim.run_id.clone(),
                            seq: record.seq,
                        },
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
            sqlx::query("UPDATE wf_runs SET status = 'ready', owner = NULL, epoch = epoch + 1, journal_len = (SELECT COUNT(*) FROM wf_journal j WHERE j.run_id = wf_runs.run_id) WHERE run_id = ?")
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
                   epoch = epoch + 1, wake_at = NULL, waiting_for = NULL, finished_at = ? WHERE run_id = ?",
            )
            .bind(end.status.as_str())
            .bind(&end.output)
            .bind(&end.error)
            .bind(sum)
            .bind(now_ms())
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
           input, checksum, created_seq, created_at, trace_context)
         VALUES (?, ?, ?, ?, ?, 'ready', ?, ?, ?, (SELECT COALESCE(MAX(created_seq), 0) + 1 FROM wf_runs), ?, ?)
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
    .bind(now_ms())
    .bind(&run.trace_context)
    .execute(&mut *tx)
    .await?;
    let row = sqlx::query("SELECT * FROM wf_runs WHERE run_id = ?")
        .bind(run.run_id.as_str())
        .fetch_one(&mut *tx)
        .await?;
    Ok(run_record(&row).map(|r| Reply::Run(Box::new(r))))
}

/// `Store::purge`: deletes finished runs that ended before `before`, oldest first.
async fn purge(tx: &mut SqliteConnection, before: SystemTime, limit: u32) -> Applied {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT run_id FROM wf_runs WHERE finished_at < ?
           AND status IN ('completed', 'failed', 'cancelled')
         ORDER BY finished_at, run_id LIMIT ?",
    )
    .bind(to_ms(before))
    .bind(i64::from(limit))
    .fetch_all(&mut *tx)
    .await?;
    for id in &ids {
        for table in ["wf_journal", "wf_signals", "wf_runs"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE run_id = ?"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(Ok(Reply::Count(ids.len() as u64)))
}

/// `Store::reopen`: appends `rewound` to a finished run's journal and makes it ready.
async fn reopen(tx: &mut SqliteConnection, run_id: &RunId, rewound: &JournalEvent) -> Applied {
    let status = match status_of(tx, run_id).await? {
        None => return Ok(Err(StoreError::UnknownRun(run_id.clone()))),
        Some(Err(e)) => return Ok(Err(e)),
        Some(Ok(status)) if !status.is_finished() => {
            return Ok(Err(StoreError::NotFinished {
                run_id: run_id.clone(),
                status,
            }))
        }
        Some(Ok(status)) => status,
    };
    // The record goes after every record there is (`journal_len` is only brought up to date
    // when a run leaves a worker unfinished).
    let (len, epoch): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM wf_journal j WHERE j.run_id = r.run_id), epoch
         FROM wf_runs r WHERE run_id = ?",
    )
    .bind(run_id.as_str())
    .fetch_one(&mut *tx)
    .await?;
    let row = rewound.encode();
    let seq = len as u64;
    sqlx::query(
        "INSERT INTO wf_journal (run_id, seq, kind, step, item, payload, epoch, checksum, at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(run_id.as_str())
    .bind(len)
    .bind(&row.kind)
    .bind(&row.step)
    .bind(row.item.map(|i| i as i64))
    .bind(&row.payload)
    .bind(epoch)
    .bind(record_checksum(run_id, seq, &row))
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE wf_runs SET status = 'ready', output = NULL, error = NULL, result_checksum = NULL,
           finished_at = NULL, owner = NULL, epoch = epoch + 1, wake_at = NULL, waiting_for = NULL,
           cancel_requested = 0, journal_len = ? WHERE run_id = ?",
    )
    .bind(len + 1)
    .bind(run_id.as_str())
    .execute(&mut *tx)
    .await?;
    Ok(Ok(Reply::Status(status)))
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
        "UPDATE wf_runs SET status = 'ready', owner = NULL, epoch = epoch + 1, journal_len = (SELECT COUNT(*) FROM wf_journal j WHERE j.run_id = wf_runs.run_id)
         WHERE status = 'claimed'
           AND NOT EXISTS (SELECT 1 FROM wf_workers w WHERE w.worker_id = wf_runs.owner)",
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(Ok(Reply::Count(taken)))
}

/// Claimable now: ready, or parked and due.
pub(super) const CLAIMABLE: &str =
    "(status = 'ready' OR (status = 'waiting' AND wake_at IS NOT NULL AND wake_at <= ?))";

async fn claim(tx: &mut SqliteConnection, worker: &WorkerId, request: &ClaimRequest) -> Applied {
    if request.definitions.is_empty() || request.limit == 0 {
        return Ok(Ok(Reply::Claimed(Vec::new())));
    }
    let now = now_ms();
    // Numbered parameters: ?1 the limit, ?2 now, then a (name, hash) pair per definition.
    let pairs = (0..request.definitions.len())
        .map(|i| format!("(?{}, ?{})", 3 + 2 * i, 4 + 2 * i))
        .collect::<Vec<_>>()
        .join(", ");
    // Ready runs in creation order, and parked runs that are due, each through its own index:
    // many runs parked on a signal (no `wake_at`) are never scanned.
    let sql = format!(
        "SELECT rowid, run_id, queue FROM (
           SELECT * FROM (SELECT rowid, run_id, queue, created_seq FROM wf_runs
             WHERE status = 'ready' AND (workflow, definition_hash) IN (VALUES {pairs})
             ORDER BY created_seq LIMIT ?1)
           UNION ALL
           SELECT * FROM (SELECT rowid, run_id, queue, created_seq FROM wf_runs INDEXED BY wf_runs_wake
             WHERE status = 'waiting' AND wake_at <= ?2 AND (workflow, definition_hash) IN (VALUES {pairs})
             ORDER BY wake_at LIMIT ?1))
         ORDER BY created_seq LIMIT ?1"
    );
    // Look past runs a full queue holds back, but not without bound.
    let mut query = sqlx::query(&sql)
        .bind(i64::from(request.limit) * 4 + 16)
        .bind(now);
    for def in &request.definitions {
        query = query.bind(&def.workflow).bind(def.hash as i64);
    }
    let rows = query.fetch_all(&mut *tx).await?;
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
    let sql = format!("SELECT rowid, queue FROM wf_runs WHERE run_id = ? AND {CLAIMABLE}");
    let row = sqlx::query(&sql)
        .bind(run_id.as_str())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(row) = row else {
        return Ok(Ok(Reply::Claimed(Vec::new())));
    };
    let rowid: i64 = row.try_get("rowid")?;
    let Ok(queue) = row.try_get::<String, _>("queue") else {
        quarantine(tx, rowid, "the queue does not decode").await?;
        return Ok(Ok(Reply::Claimed(Vec::new())));
    };
    let mut budget = QueueBudget::default();
    if !budget.take(tx, &queue, now).await? {
        return Ok(Ok(Reply::Claimed(Vec::new())));
    }
    budget.save(tx).await?;
    match take_claim(tx, worker, run_id).await? {
        Ok(run) => Ok(Ok(Reply::Claimed(vec![run]))),
        // Claimed and unreadable: out of the claimable runs, reported (as by `claim`).
        Err(error) => {
            quarantine(tx, rowid, &error.to_string()).await?;
            Ok(Err(error))
        }
    }
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
           error = ?, finished_at = ? WHERE rowid = ?",
    )
    .bind(format!("unreadable run row: {detail}"))
    .bind(now_ms())
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
/// Inserts one journal record; with `checked`, only while `claim` holds and the record before
/// it is in the journal (false when it inserted nothing).
async fn insert_record(
    tx: &mut SqliteConnection,
    claim: &Claim,
    record: &JournalRecord,
    checked: bool,
) -> Result<bool, sqlx::Error> {
    let row = record.event.encode();
    let check = if checked {
        "WHERE EXISTS (SELECT 1 FROM wf_runs WHERE run_id = ?1 AND epoch = ?7 AND owner = ?10
           AND status = 'claimed')
         AND (?2 = 0 OR EXISTS (SELECT 1 FROM wf_journal WHERE run_id = ?1 AND seq = ?2 - 1))"
    } else {
        "WHERE ?10 IS NOT NULL"
    };
    let sql = format!(
        "INSERT INTO wf_journal (run_id, seq, kind, step, item, payload, epoch, checksum, at)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 {check}"
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
        .bind(now_ms())
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
        "UPDATE wf_runs SET status = 'waiting', owner = NULL, epoch = epoch + 1, journal_len = (SELECT COUNT(*) FROM wf_journal j WHERE j.run_id = wf_runs.run_id), wake_at = ?,
           waiting_for = ? WHERE run_id = ?",
    )
    .bind(park.wake_at.map(to_ms))
    .bind(&park.waiting_for)
    .bind(claim.run_id.as_str())
    .execute(&mut *tx)
    .await?;
    Ok(Ok(Reply::Parked(Parked::Parked)))
}
