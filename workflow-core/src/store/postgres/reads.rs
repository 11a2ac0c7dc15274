//! Reads of the PostgreSQL store, on a small pool of their own, and the decoding of stored
//! rows with their checksums.

use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::Row;

use super::writes::{classify, Failure};
use super::{claimable, db, READERS};
use crate::journal::EncodedEvent;
use crate::run_id::RunId;
use crate::store::checksum::{verify_record, verify_run};
use crate::store::writer::{from_ms, to_ms, Reads};
use crate::store::{
    JournalRecord, QueueConfig, RunFilter, RunPage, RunRecord, RunStatus, RunSummary, StoreError,
    StoredDefinition, WorkerId,
};

/// Attempts of a read that hit a broken pooled connection: after a server restart every idle
/// connection of the pool may be broken, and each is found out by one failed read.
const READ_ATTEMPTS: u32 = READERS + 2;

/// The read pool.
pub(super) struct PgReads {
    pub pool: PgPool,
}

impl PgReads {
    /// Runs a read on the pool, again on another connection when the first one was broken
    /// (reads change nothing, so running one twice is harmless). The pool does not ping a
    /// connection before lending it; a broken one fails here and is dropped when returned.
    async fn read<'s, T, F, Fut>(&'s self, mut query: F) -> Result<T, StoreError>
    where
        F: FnMut(&'s PgPool) -> Fut,
        Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match query(&self.pool).await {
                Err(e) if classify(&e) == Failure::Connection && attempt < READ_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis((20 << attempt).min(500))).await;
                }
                result => return result.map_err(db),
            }
        }
    }
}

impl Reads for PgReads {
    fn load_run<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>> {
        Box::pin(async move {
            let row = self
                .read(|pool| {
                    sqlx::query("SELECT * FROM wf_runs WHERE run_id = $1")
                        .bind(run_id.as_str())
                        .fetch_optional(pool)
                })
                .await?;
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
            let rows = self
                .read(|pool| {
                    sqlx::query(
                        "SELECT run_id, workflow, version, definition_hash, queue, status, owner,
                           epoch, wake_at, waiting_for, signal_seq, cancel_requested, deadline_at,
                           claims, journal_len, created_seq, created_at, finished_at, trace_context
                         FROM wf_runs
                         WHERE created_seq > $1 AND ($2::TEXT IS NULL OR status = $2)
                           AND ($3::TEXT IS NULL OR workflow = $3) AND ($4::TEXT IS NULL OR queue = $4)
                           AND ($6::TEXT IS NULL OR owner = $6)
                           AND ($7::BIGINT IS NULL OR created_at >= $7)
                           AND ($8::BIGINT IS NULL OR created_at < $8)
                         ORDER BY created_seq LIMIT $5",
                    )
                    .bind(filter.after.map_or(0, |a| a as i64))
                    .bind(filter.status.map(RunStatus::as_str))
                    .bind(&filter.workflow)
                    .bind(&filter.queue)
                    .bind(i64::from(limit))
                    .bind(filter.owner.as_ref().map(WorkerId::as_str))
                    .bind(filter.created_since.map(to_ms))
                    .bind(filter.created_before.map(to_ms))
                    .fetch_all(pool)
                })
                .await?;
            let (mut runs, mut unreadable) = (Vec::new(), Vec::new());
            let mut last_seq = None;
            for row in &rows {
                last_seq = row.try_get::<i64, _>("created_seq").ok().or(last_seq);
                match run_summary(row) {
                    Ok(summary) => runs.push(summary),
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
            let rows = self
                .read(|pool| {
                    sqlx::query(
                        "SELECT seq, kind, step, item, payload, checksum FROM wf_journal
                         WHERE run_id = $1 ORDER BY seq",
                    )
                    .bind(run_id.as_str())
                    .fetch_all(pool)
                })
                .await?;
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
            let found: Option<i64> = self
                .read(|pool| {
                    sqlx::query_scalar(
                        "SELECT seq FROM wf_signals WHERE run_id = $1 AND name = $2 AND NOT consumed
                         LIMIT 1",
                    )
                    .bind(run_id.as_str())
                    .bind(name)
                    .fetch_optional(pool)
                })
                .await?;
            Ok(found.is_some())
        })
    }

    fn list_audit(
        &self,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<crate::store::AuditRecord>, StoreError>> {
        Box::pin(async move {
            let rows: Vec<(i64, String, String, Option<String>, String)> = self
                .read(|pool| {
                    sqlx::query_as(
                        "SELECT at, who, action, run_id, detail FROM wf_audit
                         ORDER BY id DESC LIMIT $1",
                    )
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                })
                .await?;
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
            let rows: Vec<(i64, Option<i64>)> = self
                .read(|pool| {
                    sqlx::query_as("SELECT seq, at FROM wf_journal WHERE run_id = $1 ORDER BY seq")
                        .bind(run_id.as_str())
                        .fetch_all(pool)
                })
                .await?;
            Ok(rows
                .into_iter()
                .map(|(seq, at)| (seq as u64, at.map(from_ms)))
                .collect())
        })
    }

    fn list_workers(&self) -> BoxFuture<'_, Result<Vec<WorkerId>, StoreError>> {
        Box::pin(async move {
            let ids: Vec<String> = self
                .read(|pool| {
                    sqlx::query_scalar("SELECT worker_id FROM wf_workers ORDER BY started_at")
                        .fetch_all(pool)
                })
                .await?;
            Ok(ids.into_iter().map(WorkerId::from).collect())
        })
    }

    fn definition<'a>(
        &'a self,
        workflow: &'a str,
        hash: u64,
    ) -> BoxFuture<'a, Result<Option<StoredDefinition>, StoreError>> {
        Box::pin(async move {
            let row: Option<crate::store::records::DefinitionRow> = self
                .read(|pool| {
                    sqlx::query_as(
                        "SELECT workflow, hash, version, canonical, signal_schemas FROM wf_definitions
                         WHERE workflow = $1 AND hash = $2",
                    )
                    .bind(workflow)
                    .bind(hash as i64)
                    .fetch_optional(pool)
                })
                .await?;
            Ok(row.map(crate::store::records::stored_definition))
        })
    }

    fn list_queues(&self) -> BoxFuture<'_, Result<Vec<QueueConfig>, StoreError>> {
        Box::pin(async move {
            let rows: Vec<(String, Option<i64>, Option<f64>, i64)> = self
                .read(|pool| {
                    sqlx::query_as(
                        "SELECT queue, concurrency::BIGINT, rate_per_sec::FLOAT8, burst::BIGINT
                         FROM wf_queues ORDER BY queue",
                    )
                    .fetch_all(pool)
                })
                .await?;
            Ok(rows
                .into_iter()
                .map(crate::store::records::queue_config)
                .collect())
        })
    }

    fn queue_depths(&self) -> BoxFuture<'_, Result<Vec<(String, u64)>, StoreError>> {
        Box::pin(async move {
            let rows: Vec<(String, i64)> = self
                .read(|pool| {
                    sqlx::query_as(
                        "SELECT queue, COUNT(*) FROM wf_runs
                         WHERE status = 'ready' GROUP BY queue ORDER BY queue",
                    )
                    .fetch_all(pool)
                })
                .await?;
            Ok(crate::store::records::queue_depths(rows))
        })
    }

    fn list_definitions(&self) -> BoxFuture<'_, Result<Vec<StoredDefinition>, StoreError>> {
        Box::pin(async move {
            let rows: Vec<crate::store::records::DefinitionRow> = self
                .read(|pool| {
                    sqlx::query_as(
                        "SELECT workflow, hash, version, canonical, signal_schemas FROM wf_definitions
                         ORDER BY workflow, version, hash",
                    )
                    .fetch_all(pool)
                })
                .await?;
            Ok(rows
                .into_iter()
                .map(crate::store::records::stored_definition)
                .collect())
        })
    }

    /// NOTIFY hints of the `wf_runs` channel (sent when a run is created, signalled or asked
    /// to cancel), on a connection of their own that reconnects when it breaks.
    fn wake_hints(&self) -> BoxFuture<'_, Option<futures::stream::BoxStream<'static, ()>>> {
        Box::pin(async move {
            let options = (*self.pool.connect_options()).clone();
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .min_connections(0)
                .connect_lazy_with(options.application_name("workflow-store-listener"));
            let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await.ok()?;
            listener.listen(super::NOTIFY_CHANNEL).await.ok()?;
            let hints = futures::stream::unfold(listener, |mut listener| async move {
                if listener.recv().await.is_err() {
                    // Down: the worker polls meanwhile; listening resumes once it reconnects.
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                Some(((), listener))
            });
            Some(Box::pin(hints) as futures::stream::BoxStream<'static, ()>)
        })
    }

    fn any_claimable(&self) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            let sql = format!("SELECT 1 FROM wf_runs WHERE {} LIMIT 1", claimable());
            let any: Option<i32> = self
                .read(|pool| sqlx::query_scalar(&sql).fetch_optional(pool))
                .await?;
            Ok(any.is_some())
        })
    }
}

/// Reads a column, reporting an undecodable value as a corrupt run row.
fn column<'r, T>(row: &'r PgRow, run_id: &RunId, name: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(name).map_err(|e| StoreError::Corrupt {
        run_id: run_id.clone(),
        seq: None,
        detail: format!("column `{name}`: {e}"),
    })
}

pub(super) fn run_summary(row: &PgRow) -> Result<RunSummary, StoreError> {
    let run_id = match row.try_get::<String, _>("run_id") {
        Ok(id) => RunId::from(id),
        Err(e) => return Err(StoreError::Database(format!("run id: {e}"))),
    };
    let status: String = column(row, &run_id, "status")?;
    let status = RunStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
        run_id: run_id.clone(),
        seq: None,
        detail: format!("unknown run status `{status}`"),
    })?;
    let owner: Option<String> = column(row, &run_id, "owner")?;
    Ok(RunSummary {
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
        cancel_requested: column(row, &run_id, "cancel_requested")?,
        deadline_at: column::<Option<i64>>(row, &run_id, "deadline_at")?.map(from_ms),
        claims: column::<i64>(row, &run_id, "claims")? as u32,
        journal_len: column::<i64>(row, &run_id, "journal_len")? as u64,
        created_seq: column::<i64>(row, &run_id, "created_seq")? as u64,
        created_at: column::<Option<i64>>(row, &run_id, "created_at")?.map(from_ms),
        finished_at: column::<Option<i64>>(row, &run_id, "finished_at")?.map(from_ms),
        trace_context: column(row, &run_id, "trace_context")?,
        run_id,
    })
}

/// A run row with its payloads, both checksums verified.
pub(super) fn run_record(row: &PgRow) -> Result<RunRecord, StoreError> {
    let summary = run_summary(row)?;
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

pub(super) fn journal_record(run_id: &RunId, row: &PgRow) -> Result<JournalRecord, StoreError> {
    let seq = row.try_get::<i64, _>("seq").map_err(db)? as u64;
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
