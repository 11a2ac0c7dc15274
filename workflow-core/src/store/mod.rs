//! Durable storage of runs: the [`Store`] trait the engine and workers talk to, and its records.
//!
//! The store owns every run. Commands (create, signal, cancel) are plain writes any process
//! can make. A worker [`Store::claim`]s runs and gets a [`Claim`] with a fencing epoch; every
//! write of a claimed run (append, consume a signal, park, finish, release) carries that claim
//! and is rejected with [`StoreError::LeaseLost`] once the epoch moved on, which happens when
//! the worker's lease expired and the run was taken over ([`Store::reap_expired`]). A parked
//! run ([`Store::park`]) is held by no worker and becomes claimable at its `wake_at`, or at
//! once when a signal or a cancel arrives. SQLite and PostgreSQL implement the same trait
//! over one schema.

mod checksum;
#[cfg(feature = "postgres")]
mod postgres;
mod queue;
mod records;
#[cfg(feature = "sqlite")]
mod sqlite;
mod writer;

pub use checksum::checksum;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresStore, RunNotifications, NOTIFY_CHANNEL};
pub use records::{
    effective_journal, AuditRecord, Claim, ClaimRequest, ClaimedRun, CommitTimes, DefinitionKey,
    JournalRecord, NewRun, Park, Parked, QueueConfig, QueueState, RunEnd, RunFilter, RunPage,
    RunRecord, RunStatus, RunSummary, StoredDefinition, WorkerId, WorkerRegistration,
};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteOptions, SqliteStore};

use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

use crate::journal::JournalEvent;
use crate::run_id::RunId;

/// Errors of a store.
#[derive(Debug, Clone, thiserror::Error)]
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
    /// A stored journal record or run row does not match its checksum or cannot be decoded.
    #[error("run {run_id}: corrupt {}: {detail}", match .seq { Some(seq) => format!("journal record #{seq}"), None => "run row".to_owned() })]
    Corrupt {
        /// The run.
        run_id: RunId,
        /// Journal position of the bad record (`None`: the run's own row).
        seq: Option<u64>,
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
        status: RunStatus,
        /// The signal.
        signal: String,
    },
    /// The write carried a claim whose epoch is no longer the run's: another worker took the
    /// run over. The writer must stop the run at once and write nothing more.
    #[error(
        "run {run_id}: lease lost (claim epoch {epoch} is stale); another worker owns the run"
    )]
    LeaseLost {
        /// The run.
        run_id: RunId,
        /// The stale epoch.
        epoch: u64,
    },
    /// A journal record refused because the record before it was never committed (an earlier
    /// append of the run failed while this one was queued): a journal never has a gap.
    #[error("run {run_id}: journal record #{seq} refused: the record before it is not committed")]
    JournalGap {
        /// The run.
        run_id: RunId,
        /// The refused record's position.
        seq: u64,
    },
    /// The worker's registration is gone (its lease expired and its runs were taken over).
    #[error("worker {0} lost its lease: its runs were taken over")]
    WorkerLost(WorkerId),
    /// A value the journal would not read back (e.g. `f64::NAN`, or nesting deeper than the
    /// decoder's limit): refused when it is committed, so it fails its step instead.
    #[error("{0}")]
    Unstorable(String),
    /// A step name the run's workflow does not have (a retry's `--from`).
    #[error("run {run_id}: its workflow has no step `{step}`; its steps: {}", known.join(", "))]
    UnknownStep {
        /// The run.
        run_id: RunId,
        /// The name asked for.
        step: String,
        /// The workflow's steps.
        known: Vec<String>,
    },
    /// A command for finished runs (a retry) found the run still live.
    #[error("run {run_id} is {status}: only a finished run can be retried")]
    NotFinished {
        /// The run.
        run_id: RunId,
        /// Its status.
        status: RunStatus,
    },
    /// The database failed.
    #[error("store failure: {0}")]
    Database(String),
}

/// Durable storage of runs, journals, signals, workers and queues. See the module docs.
///
/// Every method resolves once its write is committed (durably, for a durable store).
pub trait Store: Send + Sync + 'static {
    // ---- commands: any process ----

    /// Stores a new run as ready, or returns the existing one with that id (idempotent start).
    fn create_run<'a>(&'a self, run: &'a NewRun) -> BoxFuture<'a, Result<RunRecord, StoreError>>;
    /// Records an operator's action (the dashboard records each of its own).
    fn record_audit<'a>(&'a self, record: &'a AuditRecord)
        -> BoxFuture<'a, Result<(), StoreError>>;
    /// The latest `limit` audit records, newest first.
    fn list_audit(&self, limit: u32) -> BoxFuture<'_, Result<Vec<AuditRecord>, StoreError>>;
    /// Deletes up to `limit` runs that finished before `finished_before`, oldest first, with
    /// their journals and signals; returns how many. (A run's child runs are runs of their
    /// own, purged by their own end.)
    fn purge<'a>(
        &'a self,
        finished_before: SystemTime,
        limit: u32,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;
    /// When each record of the run's journal was committed, by `seq` (`None` for records
    /// stored before schema version 4).
    fn journal_times<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<crate::store::CommitTimes, StoreError>>;
    /// Makes a finished run ready again with `rewound` appended to its journal (a
    /// [`JournalEvent::Rewound`]: the steps to run again), its output and error cleared; a
    /// worker with its definition then takes it up. Returns the status it had;
    /// [`StoreError::NotFinished`] for a live run.
    fn reopen<'a>(
        &'a self,
        run_id: &'a RunId,
        rewound: &'a JournalEvent,
    ) -> BoxFuture<'a, Result<RunStatus, StoreError>>;
    /// Loads a run, payloads included.
    fn load_run<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>>;
    /// One page of runs, oldest first, without their payloads.
    fn list<'a>(&'a self, filter: &'a RunFilter) -> BoxFuture<'a, Result<RunPage, StoreError>>;
    /// The run's journal in order, checksums verified and events decoded.
    fn journal<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Vec<JournalRecord>, StoreError>>;
    /// Stores a signal for a run (it waits there until a step consumes it) and wakes the run
    /// if it is parked.
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
    /// Asks for a run to be cancelled: its owner stops it and compensates; a parked run is
    /// woken for that. Returns the run's status (a finished run is left as it is).
    fn request_cancel<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<RunStatus, StoreError>>;
    /// Keeps a workflow definition (a no-op if the store has it). Workers and clients store
    /// each definition they start or execute runs of. The default keeps nothing.
    fn put_definition<'a>(
        &'a self,
        _definition: &'a StoredDefinition,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
    /// The stored definition of `workflow` with `hash`, if the store has it.
    fn definition<'a>(
        &'a self,
        _workflow: &'a str,
        _hash: u64,
    ) -> BoxFuture<'a, Result<Option<StoredDefinition>, StoreError>> {
        Box::pin(async { Ok(None) })
    }
    /// The queues with limits ([`Store::set_queue`]), by name. The default has none.
    fn list_queues(&self) -> BoxFuture<'_, Result<Vec<QueueConfig>, StoreError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    /// How many runs are ready (waiting for a worker to claim them) on each queue that has
    /// any, by queue name. The default counts none.
    fn queue_depths(&self) -> BoxFuture<'_, Result<Vec<(String, u64)>, StoreError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    /// Every stored definition, by workflow name then version. The default keeps none.
    fn list_definitions(&self) -> BoxFuture<'_, Result<Vec<StoredDefinition>, StoreError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    /// Sets (or replaces) the limits of a queue.
    fn set_queue<'a>(&'a self, config: &'a QueueConfig) -> BoxFuture<'a, Result<(), StoreError>>;

    // ---- workers ----

    /// Registers a worker with a lease that starts now.
    fn register_worker<'a>(
        &'a self,
        registration: &'a WorkerRegistration,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Extends the worker's lease; returns the runs it owns whose cancel was requested.
    /// [`StoreError::WorkerLost`] when the worker's registration is gone.
    fn heartbeat<'a>(
        &'a self,
        worker: &'a WorkerId,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<RunId>, StoreError>>;
    /// Removes a worker; its claimed runs become ready (with a new epoch).
    fn deregister_worker<'a>(
        &'a self,
        worker: &'a WorkerId,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    /// The registered workers.
    fn list_workers(&self) -> BoxFuture<'_, Result<Vec<WorkerId>, StoreError>>;
    /// The takeover sweep: removes workers whose lease expired and makes their runs ready with
    /// a new epoch (and runs claimed by a worker that no longer exists). Returns how many runs
    /// were taken back. Idempotent; any worker may run it at any time.
    fn reap_expired(&self) -> BoxFuture<'_, Result<u64, StoreError>>;
    /// Hints that runs may have become claimable (started, signalled or cancelled by another
    /// process), so an idle worker need not wait for its next poll. Hints may be lost; workers
    /// poll as well. `None` (the default): the store has no hints.
    fn wake_hints(&self) -> BoxFuture<'_, Option<futures::stream::BoxStream<'static, ()>>> {
        Box::pin(async { None })
    }
    /// Claims up to `request.limit` claimable runs (ready, or parked and due) of the given
    /// definitions, within every queue's limits.
    fn claim<'a>(
        &'a self,
        worker: &'a WorkerId,
        request: &'a ClaimRequest,
    ) -> BoxFuture<'a, Result<Vec<ClaimedRun>, StoreError>>;
    /// Claims one run, if it is claimable now.
    fn claim_run<'a>(
        &'a self,
        worker: &'a WorkerId,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Option<ClaimedRun>, StoreError>>;

    // ---- writes of a claimed run: fenced by the claim's epoch ----

    /// Appends records to the run's journal. The built-in stores queue the append in this
    /// call, not at the future's first poll, so appends made in order commit in that order and
    /// a run may have several in flight; a store that sends its append only when the future is
    /// first polled stays correct (the scheduler polls a run's appends oldest first) but its
    /// runs do not overlap their commits. A record that would follow a missing one (an earlier
    /// append of the run failed) is refused with [`StoreError::JournalGap`], so a journal
    /// never has a gap.
    fn append(
        &self,
        claim: &Claim,
        records: Vec<JournalRecord>,
    ) -> BoxFuture<'static, Result<(), StoreError>>;
    /// Consumes the oldest unconsumed signal `name`, if any, journaling it at `seq` as
    /// consumed by `step` in the same transaction (exactly once); returns its payload.
    fn consume_signal<'a>(
        &'a self,
        claim: &'a Claim,
        seq: u64,
        step: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;
    /// Notes which signals a claimed run waits for while it waits in its worker's memory
    /// (`None`: no longer waiting); listings show it.
    fn set_waiting<'a>(
        &'a self,
        claim: &'a Claim,
        waiting_for: Option<String>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Parks the run (releases the claim), unless a signal or cancel arrived since
    /// `park.seen_signal_seq`.
    fn park<'a>(
        &'a self,
        claim: &'a Claim,
        park: &'a Park,
    ) -> BoxFuture<'a, Result<Parked, StoreError>>;
    /// Gives the run back (ready, new epoch), e.g. at a graceful shutdown.
    fn release<'a>(&'a self, claim: &'a Claim) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Records the run's end and releases it.
    fn finish<'a>(
        &'a self,
        claim: &'a Claim,
        end: &'a RunEnd,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// The stored definition a run started with; a [`StoreError::Corrupt`] naming the run when the
/// store does not keep it (tools read a run's graph and signals from it).
pub async fn definition_of(
    store: &dyn Store,
    run: &RunSummary,
) -> Result<StoredDefinition, StoreError> {
    store
        .definition(&run.workflow, run.definition_hash)
        .await?
        .ok_or_else(|| StoreError::Corrupt {
            run_id: run.run_id.clone(),
            seq: None,
            detail: format!(
                "the store keeps no definition of `{}` with hash {:016x}",
                run.workflow, run.definition_hash
            ),
        })
}

/// Every queue that has limits or ready runs, by name: [`Store::list_queues`] joined with
/// [`Store::queue_depths`] (what the dashboard and the command line show).
pub async fn queue_states(store: &dyn Store) -> Result<Vec<QueueState>, StoreError> {
    let mut queues: std::collections::BTreeMap<String, (Option<QueueConfig>, u64)> =
        Default::default();
    for config in store.list_queues().await? {
        let queue = config.queue.clone();
        queues.entry(queue).or_default().0 = Some(config);
    }
    for (queue, ready) in store.queue_depths().await? {
        queues.entry(queue).or_default().1 = ready;
    }
    Ok(queues
        .into_iter()
        .map(|(queue, (limits, ready))| QueueState {
            queue,
            limits,
            ready,
        })
        .collect())
}
