//! Reads of the SQLite store, on connections of their own (WAL runs them beside the writer),
//! and the decoding of stored rows with their checksums.

use futures::future::BoxFuture;
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::Row;

use super::writes::{db, now_ms};
use crate::journal::EncodedEvent;
use crate::run_id::RunId;
use crate::store::checksum::{verify_record, verify_run};
use crate::store::writer::{from_ms, to_ms, Reads};
use crate::store::{
    JournalRecord, QueueConfig, RunFilter, RunPage, RunRecord, RunStatus, RunSummary, StoreError,
    StoredDefinition, WorkerId,
};

/// The read connections. Plain connections, not an `SqlitePool`: a pool arms a timer around
/// every acquire, which paused test time (`tokio::time::pause`) fires at once.
pub(super) struct SqliteReads {
    pub readers: Vec<tokio::sync::Mutex<SqliteConnection>>,
    pub next_reader: std::sync::atomic::AtomicUsize,
}

impl SqliteReads {
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
}

impl Reads for SqliteReads {
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
                   wake_at, waiting_for, signal_seq, cancel_requested, deadline_at, claims, journal_len,
                   created_seq, created_at, finished_at, trace_context
                 FROM wf_runs
                 WHERE created_seq > ? AND (? IS NULL OR status = ?) AND (? IS NULL OR workflow = ?)
                   AND (? IS NULL OR queue = ?) AND (? IS NULL OR owner = ?)
                   AND (? IS NULL OR created_at >= ?) AND (? IS NULL OR created_at < ?)
                 ORDER BY created_seq LIMIT ?",
            )
            .bind(filter.after.map_or(0, |a| a as i64))
            .bind(filter.status.map(RunStatus::as_str))
            .bind(filter.status.map(RunStatus::as_str))
            .bind(&filter.workflow)
            .bind(&filter.workflow)
            .bind(&filter.queue)
            .bind(&filter.queue)
            .bind(filter.owner.as_ref().map(WorkerId::as_str))
            .bind(filter.owner.as_ref().map(WorkerId::as_str))
            .bind(filter.created_since.map(to_ms))
            .bind(filter.created_since.map(to_ms))
            .bind(filter.created_before.map(to_ms))
            .bind(filter.created_before.map(to_ms))
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

    fn list_audit(
        &self,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<crate::store::AuditRecord>, StoreError>> {
        Box::pin(async move {
            let rows: Vec<(i64, String, String, Option<String>, String)> = sqlx::query_as(
                "SELECT at, who, action, run_id, detail FROM wf_audit ORDER BY id DESC LIMIT ?",
            )
            .bind(i64::from(limit))
            .fetch_all(&mut *self.reader().await)
            .await
            .map_err(db)?;
            Ok(rows
                .into_iter()
                .map(crate::store::records::audit_record)
                .collect())
        })
    }

    fn journal_times<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<crate::store::CommitTimes, StoreError>> {
        Box::pin(async move {
            let rows: Vec<(i64, Option<i64>)> =
                sqlx::query_as("SELECT seq, at FROM wf_journal WHERE run_id = ? ORDER BY seq")
                    .bind(run_id.as_str())
                    .fetch_all(&mut *self.reader().await)
                    .await
                    .map_err(db)?;
            Ok(rows
                .into_iter()
                .map(|(seq, at)| (seq as u64, at.map(from_ms)))
                .collect())
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

    fn definition<'a>(
        &'a self,
        workflow: &'a str,
        hash: u64,
    ) -> BoxFuture<'a, Result<Option<StoredDefinition>, StoreError>> {
        Box::pin(async move {
            let row: Option<crate::store::records::DefinitionRow> = sqlx::query_as(
                "SELECT workflow, hash, version, canonical, signal_schemas FROM wf_definitions
                 WHERE workflow = ? AND hash = ?",
            )
            .bind(workflow)
            .bind(hash as i64)
            .fetch_optional(&mut *self.reader().await)
            .await
            .map_err(db)?;
            Ok(row.map(crate::store::records::stored_definition))
        })
    }

    fn list_queues(&self) -> BoxFuture<'_, Result<Vec<QueueConfig>, StoreError>> {
        Box::pin(async move {
            let rows: Vec<(String, Option<i64>, Option<f64>, i64)> = sqlx::query_as(
                "SELECT queue, concurrency, rate_per_sec, burst FROM wf_queues ORDER BY queue",
            )
            .fetch_all(&mut *self.reader().await)
            .await
            .map_err(db)?;
            Ok(rows
                .into_iter()
                .map(crate::store::records::queue_config)
                .collect())
        })
    }

    fn queue_depths(&self) -> BoxFuture<'_, Result<Vec<(String, u64)>, StoreError>> {
        Box::pin(async move {
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "SELECT queue, COUNT(*) FROM wf_runs INDEXED BY wf_runs_status
                 WHERE status = 'ready' GROUP BY queue ORDER BY queue",
            )
            .fetch_all(&mut *self.reader().await)
            .await
            .map_err(db)?;
            Ok(crate::store::records::queue_depths(rows))
        })
    }

    fn list_definitions(&self) -> BoxFuture<'_, Result<Vec<StoredDefinition>, StoreError>> {
        Box::pin(async move {
            let rows: Vec<crate::store::records::DefinitionRow> = sqlx::query_as(
                "SELECT workflow, hash, version, canonical, signal_schemas FROM wf_definitions
                 ORDER BY workflow, version, hash",
            )
            .fetch_all(&mut *self.reader().await)
            .await
            .map_err(db)?;
            Ok(rows
                .into_iter()
                .map(crate::store::records::stored_definition)
                .collect())
        })
    }

    fn any_claimable(&self) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            let any: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM wf_runs WHERE status = 'ready')
                   OR EXISTS (SELECT 1 FROM wf_runs INDEXED BY wf_runs_wake
                              WHERE status = 'waiting' AND wake_at <= ?)",
            )
            .bind(now_ms())
            .fetch_one(&mut *self.reader().await)
            .await
            .map_err(db)?;
            Ok(any)
        })
    }
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
        journal_len: column::<i64>(row, &run_id, "journal_len")? as u64,
        created_seq: column::<i64>(row, &run_id, "created_seq")? as u64,
        created_at: column::<Option<i64>>(row, &run_id, "created_at")?.map(from_ms),
        finished_at: column::<Option<i64>>(row, &run_id, "finished_at")?.map(from_ms),
        trace_context: column(row, &run_id, "trace_context")?,
        run_id,
    };
    let deadline: Option<i64> = column(row, &summary.run_id, "deadline_at")?;
    Ok((summary, deadline.unwrap_or(-1)))
}

/// A run row with its payloads, both checksums verified.
pub(super) fn run_record(row: &SqliteRow) -> Result<RunRecord, StoreError> {
    let (summary, _) = run_summary(row)?;
    let run_id = summary.run_id.clone();
    let record = RunRecord {
        input: column(row, &run_id, "input")?,
        output: column(row, &run_id, "output")?,
        error: column(row, &run_id, "error")?,
        summary,
    };
    let deadline = column::<Option<i64>>(row, &run_id, "deadline_at")?.map(|d| d as u64);
    let checksum = column::<i64>(row, &run_id, "checksum")?;
    let stored_result = column::<Option<i64>>(row, &run_id, "result_checksum")?;
    verify_run(&record, deadline, checksum, stored_result)?;
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
    verify_record(run_id, seq, encoded, stored)
}
