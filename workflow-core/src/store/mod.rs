//! Durable storage of runs: the [`Store`] trait the engine talks to, and its records.
//!
//! The engine assumes nothing SQL-specific: a store keeps runs, an append-only journal per
//! run, and signals. The SQLite store implements it with one schema that a PostgreSQL store
//! (many workers, `FOR UPDATE SKIP LOCKED` claims, leases with a fencing epoch) can share.

mod checksum;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use checksum::checksum;
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteOptions, SqliteStore};

use futures::future::BoxFuture;

use crate::run_id::RunId;

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// Started and not finished: running now, or interrupted and waiting to be recovered.
    Running,
    /// Waiting for a signal (see [`RunRecord::waiting_for`]).
    Waiting,
    /// Finished with an output.
    Completed,
    /// Finished with an error (compensations, if any, ran).
    Failed,
    /// Cancelled from outside (compensations, if any, ran).
    Cancelled,
}

impl RunStatus {
    /// The name stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Waiting => "waiting",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a stored status name.
    pub fn parse(text: &str) -> Option<RunStatus> {
        [
            RunStatus::Running,
            RunStatus::Waiting,
            RunStatus::Completed,
            RunStatus::Failed,
            RunStatus::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// True once the run can no longer change.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

/// A run as stored.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// The run.
    pub run_id: RunId,
    /// Workflow name.
    pub workflow: String,
    /// Workflow version the run started with.
    pub version: u32,
    /// Definition hash the run started with.
    pub definition_hash: u64,
    /// Where it stands.
    pub status: RunStatus,
    /// The encoded input.
    pub input: Vec<u8>,
    /// The encoded output, once completed.
    pub output: Option<Vec<u8>>,
    /// The error message, once failed or cancelled.
    pub error: Option<String>,
    /// The signals a waiting run waits for (comma-separated names).
    pub waiting_for: Option<String>,
}

/// What kind of fact a journal record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A step (or a `for_each` item) completed; the payload is its encoded output.
    Output,
    /// A signal was consumed by a step; the payload is the encoded signal.
    Signal,
    /// A step began waiting for a signal; the payload is the start time (ms since the epoch).
    WaitStarted,
    /// The run stopped early and compensation began; the payload is the error message.
    Stopped,
    /// A compensation finished (succeeded or gave up); `item` is the saga completion number.
    Compensated,
}

impl RecordKind {
    /// The name stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Output => "output",
            RecordKind::Signal => "signal",
            RecordKind::WaitStarted => "wait",
            RecordKind::Stopped => "stopped",
            RecordKind::Compensated => "compensated",
        }
    }

    /// Parses a stored kind.
    pub fn parse(text: &str) -> Option<RecordKind> {
        [
            RecordKind::Output,
            RecordKind::Signal,
            RecordKind::WaitStarted,
            RecordKind::Stopped,
            RecordKind::Compensated,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

/// One journal record of a run. `seq` orders the records of a run from 0.
#[derive(Debug, Clone)]
pub struct JournalRecord {
    /// Position in the run's journal.
    pub seq: u64,
    /// What the record says.
    pub kind: RecordKind,
    /// Step index in the definition.
    pub step: u16,
    /// `for_each` item, or saga completion number.
    pub item: Option<u64>,
    /// Encoded payload.
    pub payload: Vec<u8>,
}

impl JournalRecord {
    /// The checksum stored beside the record; covers every field and the run id.
    pub fn checksum(&self, run_id: &RunId) -> i64 {
        checksum(&[
            run_id.as_str().as_bytes(),
            &self.seq.to_le_bytes(),
            self.kind.as_str().as_bytes(),
            &self.step.to_le_bytes(),
            &self.item.map_or(u64::MAX, |i| i).to_le_bytes(),
            &self.payload,
        ])
    }
}

/// A new run to store.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// The run's id (caller-chosen or generated).
    pub run_id: RunId,
    /// Workflow name.
    pub workflow: String,
    /// Workflow version.
    pub version: u32,
    /// Definition hash.
    pub definition_hash: u64,
    /// Encoded input.
    pub input: Vec<u8>,
}

/// Errors of a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file or database is not a workflow store.
    #[error("`{location}` is not a workflow store: {detail}")]
    NotAStore {
        /// Path or URL.
        location: String,
        /// What the database said.
        detail: String,
    },
    /// The store was written by a newer version of this crate.
    #[error("`{location}` has schema version {found}, newer than the {supported} this build supports; upgrade workflow-core")]
    NewerSchema {
        /// Path or URL.
        location: String,
        /// Version found.
        found: i64,
        /// Highest version this build reads.
        supported: i64,
    },
    /// A stored record does not match its checksum or cannot be decoded.
    #[error("run {run_id}: corrupt journal record #{seq}: {detail}")]
    Corrupt {
        /// The run.
        run_id: RunId,
        /// Journal position of the bad record.
        seq: u64,
        /// What is wrong.
        detail: String,
    },
    /// No run with that id.
    #[error("no run {0}")]
    UnknownRun(RunId),
    /// The run already finished: it takes no more signals.
    #[error("run {run_id} already finished ({status}): signal `{signal}` was not delivered")]
    RunFinished {
        /// The run.
        run_id: RunId,
        /// Its final status.
        status: &'static str,
        /// The signal.
        signal: String,
    },
    /// The database failed.
    #[error("store failure: {0}")]
    Database(String),
}

/// Durable storage of runs, journals and signals. See the module docs.
pub trait Store: Send + Sync + 'static {
    /// Stores a new run, or returns the existing one with that id (idempotent start).
    fn create_run<'a>(&'a self, run: &'a NewRun) -> BoxFuture<'a, Result<RunRecord, StoreError>>;
    /// Loads a run.
    fn load_run<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>>;
    /// The run's journal in order, checksums verified.
    fn journal<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Vec<JournalRecord>, StoreError>>;
    /// Appends records durably (committed when the future resolves).
    fn append<'a>(
        &'a self,
        run_id: &'a RunId,
        records: Vec<JournalRecord>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Marks a run running or waiting (with the signals it waits for).
    fn set_waiting<'a>(
        &'a self,
        run_id: &'a RunId,
        waiting_for: Option<String>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Records a run's end.
    fn finish<'a>(
        &'a self,
        run_id: &'a RunId,
        status: RunStatus,
        output: Option<Vec<u8>>,
        error: Option<String>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Runs with the given status (all runs with `None`), oldest first.
    fn list<'a>(
        &'a self,
        status: Option<RunStatus>,
    ) -> BoxFuture<'a, Result<Vec<RunRecord>, StoreError>>;
    /// Stores a signal for a run; it waits there until a step consumes it.
    fn send_signal<'a>(
        &'a self,
        run_id: &'a RunId,
        name: &'a str,
        payload: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    /// True when an unconsumed signal `name` is stored for the run.
    fn has_signal<'a>(
        &'a self,
        run_id: &'a RunId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// Consumes the oldest unconsumed signal `name` of a run, if any, appending `record`
    /// (with the payload filled in) to the journal in the same transaction: exactly once.
    fn consume_signal<'a>(
        &'a self,
        run_id: &'a RunId,
        name: &'a str,
        record: JournalRecord,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;
}
