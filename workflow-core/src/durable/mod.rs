//! [`DurableEngine`]: runs journaled in a [`Store`] that owns them, executed by workers that
//! claim them, resumed after a crash or a takeover without running again any step whose
//! result was committed.
//!
//! Every durable engine is also a worker (see [`WorkerOptions`]): it registers with the store,
//! heartbeats, claims ready runs of the workflows registered with it, and takes over runs of
//! workers whose lease expired. Any number of engines, in any number of processes, may share
//! one store: each run executes in exactly one place at a time.
//!
//! Guarantees (each with the test that would catch its violation):
//! - **one owner at a time**: every write of a run carries its claim's epoch and the store
//!   rejects a stale one ([`StoreError::LeaseLost`]); the worker that gets it stops the run at
//!   once and writes nothing more. A worker that cannot heartbeat within its lease minus two
//!   heartbeats fences itself: it stops its runs before any further write
//!   (`tests/ownership.rs`: `a_worker_paused_past_its_lease_writes_nothing_more`,
//!   `a_worker_that_cannot_heartbeat_fences_itself_and_its_step_runs_again_once`);
//! - **committed work is never redone**: a step whose result was committed is never run again
//!   and each result is journaled once. Steps run at least once: a step in flight at a crash
//!   or a lost lease runs again (once per owner), so pass
//!   [`StepContext::idempotency_key`](crate::StepContext::idempotency_key) (stable per run,
//!   step and item) to side effects (`tests/crash.rs`, 100+ SIGKILLs;
//!   `tests/ownership.rs`: `two_workers_share_a_store_a_killed_ones_runs_are_taken_over_and_none_runs_twice`);
//! - **no run is stranded**: a run whose owner died is taken over by any worker with its
//!   definition, after the owner's lease (at once when the owner was a process of this
//!   machine that is gone); a run whose drive was dropped or hit a store failure is given
//!   back to the store (`tests/ownership.rs`, `tests/durable.rs`:
//!   `a_dropped_execute_leaves_the_run_recoverable_by_the_same_engine`);
//! - **commits overlap, outputs wait for theirs**: a step's output is queued to the store when
//!   its attempt ends and handed downstream only once committed, in journal order; meanwhile
//!   the run's other steps keep running, and its parallel branches and `for_each` items share
//!   group commits. A record that would follow one whose commit failed is refused
//!   ([`StoreError::JournalGap`]), so a journal has no gaps; a run that stops waits for the
//!   outputs still committing, so their saga steps are compensated. A run has at most 256
//!   outputs in flight (then it waits for the oldest), so it cannot hold up the store's other
//!   writes (`a_run_queues_at_most_256_commits_so_the_stores_other_writes_do_not_wait_behind_it`).
//!   Runs with signal steps,
//!   loops or races commit each output before anything else happens (their order of events
//!   is fixed by the journal) (`tests/durable.rs`:
//!   `a_run_goes_on_while_an_output_commits_and_hands_it_on_only_once_committed`,
//!   `a_saga_step_still_committing_when_the_run_stops_is_compensated`);
//! - **compensations** run at least once, in reverse completion order, and each finished one
//!   is journaled: a crash during compensation resumes compensation, not the forward path
//!   (`tests/crash.rs`);
//! - **signals** are consumed exactly once (the consumption is journaled in the same
//!   transaction), and a signal sent before the wait began is kept (`tests/durable.rs`);
//! - **parked runs**: a run started with [`DurableEngine::start`] whose only work left is
//!   waiting for signals holds no claim and no memory in any worker; its signal, its
//!   deadline or a cancel makes it claimable again (`tests/durable.rs`:
//!   `a_waiting_run_is_listed_as_waiting_for_its_signal`; `benches/waiting.rs` measures the
//!   memory). Runs driven by [`DurableEngine::execute`] wait in the caller's task instead,
//!   since the caller awaits them anyway;
//! - **commands from anywhere**: start, signal and cancel are store writes any process can
//!   make; a cancel reaches a run executing in another process within a second and its saga
//!   steps are compensated (`tests/ownership.rs`:
//!   `a_cancel_from_another_process_reaches_a_running_run_and_compensates`);
//! - **deadlines are stored with the run**: a deadline that passed while no worker ran the
//!   run is enforced before any further step (`tests/ownership.rs`:
//!   `a_deadline_that_passes_while_no_worker_runs_is_enforced_on_takeover`);
//! - **queue limits** hold across every worker of a store (`tests/ownership.rs`:
//!   `a_queue_limit_holds_across_three_workers`);
//! - **definitions**: a run resumes only under the definition hash it started with: workers
//!   claim only runs of definitions they registered, and [`WorkflowError::VersionMismatch`]
//!   reports the others, which are left for a worker that has their definition
//!   (`tests/durable.rs`: `a_run_resumes_only_under_the_definition_it_started_with`);
//! - **damage is reported**: a corrupt or truncated journal record or run row is detected by
//!   its checksum and reported ([`StoreError::Corrupt`] with its position), never silently
//!   re-run (`tests/durable.rs`: `a_corrupt_journal_record_is_reported_and_nothing_runs_again`).

//!
//! ## Failure model
//!
//! - **Retried**: a busy or locked SQLite database (another process writing) and, on
//!   PostgreSQL, a broken connection or a serialization failure before commit: the writer runs
//!   the batch again (`tests/ownership.rs`:
//!   `a_second_process_writing_at_full_speed_is_never_refused_and_strands_nothing`: 0 refused
//!   of ~10,000 sends). A run whose drive hit any other store failure is given back to the
//!   store and claimed again; a step attempt is retried per its policy.
//! - **Isolated**: one request's failure inside a shared group commit fails that request only
//!   (`tests/faults.rs`: `one_requests_failure_in_a_group_commit_fails_no_other_request`).
//! - **Detected and reported**: a journal record or a run row whose checksum does not match,
//!   a gap in a journal ([`StoreError::Corrupt`] with the record's `seq`, or `None` for the
//!   run row); a file that is not a store (refused, left untouched); a newer schema
//!   ([`StoreError::NewerSchema`]); a run row that cannot be read (listed in
//!   [`RunPage::unreadable`] and [`Recovery::unreadable`], taken out of the claimable runs,
//!   the others recover: `tests/faults.rs`).
//! - **Refused at the door**: a value the journal could not read back (`f64::NAN`, nesting
//!   past the decoder's limit) fails its step, naming it, when it is committed; a signal
//!   payload that does not decode fails its step, naming the signal; a run id reused with
//!   another input is [`WorkflowError::InputConflict`]; a run of another workflow is
//!   [`WorkflowError::WrongWorkflow`].
//! - **Never done silently**: re-running a committed step, replacing a committed result,
//!   resuming a run under another definition, writing under a lost lease, leaving a run
//!   claimed by nobody (a dropped or failed drive gives its claim back; a dead worker's runs are
//!   taken over).
//! - **Not detected yet**: the loss of the *last* records of a journal (a gap in the middle is
//!   detected; a truncated tail looks like a run that had not got that far, and those steps
//!   run again, at least once as for a crash).

pub(crate) mod child_history;
mod events;
mod follow;
mod handle;
mod journal;
mod run;
mod undo;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

use crate::engine::Finished;
use crate::error::WorkflowError;
use crate::event_feed::EventFeed;
use crate::options::RunOptions;
use crate::run_id::RunId;
use crate::store::{
    DefinitionKey, JournalRecord, NewRun, QueueConfig, RunFilter, RunPage, RunRecord, RunStatus,
    RunSummary, Store, StoreError, StoredDefinition, WorkerId,
};
use crate::worker::{spawn_loops, ClaimedRuns, Identity, Registry, Runner, WorkerOptions};
use crate::workflow::Durable;

use run::{finished_result, RunControl};

/// How often a caller waiting for a run owned elsewhere re-reads the store.
const POLL: Duration = Duration::from_millis(200);

/// An engine whose runs are journaled in a [`Store`]. Cheap to clone.
///
/// Create one with [`crate::Engine::sqlite`] (or [`DurableEngine::new`] over any store).
#[derive(Clone)]
pub struct DurableEngine {
    inner: Arc<Inner>,
}

/// A weak reference to an engine, held by its background loops.
pub(crate) struct WeakEngine(Weak<Inner>);

impl WeakEngine {
    pub fn upgrade(&self) -> Option<DurableEngine> {
        self.0.upgrade().map(|inner| DurableEngine { inner })
    }
}

struct Inner {
    store: Arc<dyn Store>,
    options: WorkerOptions,
    identity: Identity,
    registry: Registry,
    /// Started the background loops.
    loops: std::sync::Once,
    shutting_down: AtomicBool,
    /// Runs executing in this process.
    active: Mutex<HashMap<RunId, RunControl>>,
    /// The events of the runs this engine executes, for [`DurableEngine::events`].
    feed: Arc<EventFeed>,
    /// Hashes of the definitions this engine stored.
    stored_definitions: Mutex<std::collections::HashSet<u64>>,
    /// Wakes signal waiters of a run executing here.
    signal_bells: Mutex<HashMap<RunId, Arc<Notify>>>,
    /// Wakes result waiters when a run executing here ends.
    finished: Notify,
    /// Wakes the claim loop (a run was started or signalled here).
    claim_bell: Arc<Notify>,
    /// The runs the claim loop started and that have not ended.
    claimed: Arc<ClaimedRuns>,
    /// Writes the store rejected because another worker owned the run.
    rejected_writes: AtomicU64,
    /// Runs stopped because this worker fenced itself before writing.
    fenced_runs: AtomicU64,
}

/// What this engine's worker saw of lost leases (see [`DurableEngine::fencing`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fencing {
    /// Writes the store rejected ([`StoreError::LeaseLost`]): each stopped its run at once.
    pub rejected_writes: u64,
    /// Runs this worker stopped on its own, before any write, because it could not heartbeat
    /// within its lease (or the store said it was reaped).
    pub self_fenced_runs: u64,
}

impl Drop for Inner {
    /// The last handle to the engine is gone (and with it every run it executed): leave the
    /// store, so other workers take this worker's runs over at once instead of after its
    /// lease.
    fn drop(&mut self) {
        let (Some(worker), Ok(runtime)) = (
            self.identity.registered(),
            tokio::runtime::Handle::try_current(),
        ) else {
            return;
        };
        let store = self.store.clone();
        runtime.spawn(async move {
            let _ = store.deregister_worker(&worker).await;
        });
    }
}

/// What [`DurableEngine::recover`] did.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Interrupted runs of the workflow, now claimable by this engine's worker (which executes
    /// them in background tasks).
    pub resumed: Vec<RunId>,
    /// Unfinished runs that cannot resume here ([`WorkflowError::VersionMismatch`]); they are
    /// left untouched in the store for a worker that has their definition.
    pub refused: Vec<WorkflowError>,
    /// Run rows that cannot be read ([`StoreError::Corrupt`]); the other runs recover.
    pub unreadable: Vec<StoreError>,
}

impl DurableEngine {
    /// An engine (and worker) over `store`, with default [`WorkerOptions`].
    pub fn new(store: impl Store) -> Self {
        Self::with_options(store, WorkerOptions::default())
    }

    /// An engine over `store` whose worker has the given options.
    pub fn with_options(store: impl Store, options: WorkerOptions) -> Self {
        Self::from_arc(Arc::new(store), options)
    }

    /// An engine over a shared store.
    pub fn from_arc(store: Arc<dyn Store>, options: WorkerOptions) -> Self {
        let claim_bell = Arc::new(Notify::new());
        DurableEngine {
            inner: Arc::new(Inner {
                store,
                options,
                identity: Identity::new(),
                registry: Registry::default(),
                loops: std::sync::Once::new(),
                shutting_down: AtomicBool::new(false),
                active: Mutex::new(HashMap::new()),
                stored_definitions: Mutex::default(),
                feed: Arc::default(),
                signal_bells: Mutex::new(HashMap::new()),
                finished: Notify::new(),
                claimed: Arc::new(ClaimedRuns::new(claim_bell.clone())),
                claim_bell,
                rejected_writes: AtomicU64::new(0),
                fenced_runs: AtomicU64::new(0),
            }),
        }
    }

    /// The events of every run this engine's worker (or caller) executes from now on, steps
    /// named by their names: a worker's live view. A run's own stream, from any process, is
    /// [`RunHandle::events`](crate::RunHandle::events).
    pub fn events(&self) -> futures::stream::BoxStream<'static, crate::EngineEvent> {
        self.inner.feed.subscribe()
    }

    pub(crate) fn feed(&self) -> &Arc<EventFeed> {
        &self.inner.feed
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    /// This engine's worker id in the store (it changes if the worker ever loses its lease).
    pub fn worker_id(&self) -> WorkerId {
        self.inner.identity.current()
    }

    /// Registers `workflow` with this engine's worker: it claims and executes runs of its
    /// definition (name and hash) in background tasks, including runs started by other
    /// processes. Registering a definition again is a no-op.
    pub async fn register<W>(&self, workflow: &W) -> Result<(), StoreError>
    where
        W: Durable + Clone + Send + Sync + 'static,
        W::Input: 'static,
    {
        self.ensure_worker().await?;
        self.remember_definition::<W>().await;
        let def = W::definition();
        let key = DefinitionKey {
            workflow: def.name.to_owned(),
            hash: def.hash,
        };
        let workflow = Arc::new(workflow.clone());
        let added = self.inner.registry.register(key, || -> Runner {
            Arc::new(move |engine: DurableEngine, claimed| {
                let workflow = workflow.clone();
                Box::pin(async move {
                    let run_id = claimed.claim.run_id.clone();
                    let options = RunOptions::default();
                    let (outcome, _) = engine.drive_claim(&*workflow, claimed, options, true).await;
                    if let Ok(Err(error)) = outcome {
                        tracing::warn!(%run_id, %error, "background run ended with an error");
                    }
                })
            })
        });
        if added {
            self.inner.claim_bell.notify_one();
        }
        Ok(())
    }

    /// Sets the limits of a named queue (see [`RunOptions::queue`]); they hold across every
    /// worker of the store.
    pub async fn set_queue(&self, config: QueueConfig) -> Result<(), StoreError> {
        self.inner.store.set_queue(&config).await
    }

    /// Runs `workflow` on `input` under a fresh id, to its end, in the current task.
    ///
    /// A workflow whose types are not serializable is one compile error, at the workflow
    /// argument, naming the step (the returned future is boxed so that rustc reports the bound
    /// once).
    pub fn run<'a, W: Durable + Sync>(
        &'a self,
        workflow: &'a W,
        input: W::Input,
    ) -> futures::future::BoxFuture<'a, Result<W::Output, WorkflowError>>
    where
        W::Input: 'a,
    {
        Box::pin(async move {
            self.execute_checked(workflow, input, RunOptions::default())
                .await
                .result
        })
    }

    /// Runs with [`RunOptions`] (its id, deadline, cancellation, queue) in the current task,
    /// and returns the result and history. With an id ([`RunOptions::run_id`]) that exists,
    /// the stored run continues (or its stored result is returned); see
    /// [`DurableEngine::execute`].
    pub fn run_with<'a, W: Durable + Sync>(
        &'a self,
        workflow: &'a W,
        input: W::Input,
        options: RunOptions,
    ) -> futures::future::BoxFuture<'a, Finished<W::Output>>
    where
        W::Input: 'a,
    {
        Box::pin(self.execute_checked(workflow, input, options))
    }

    /// [`DurableEngine::run_with`], unboxed.
    async fn execute_checked<W: Durable + Sync>(
        &self,
        workflow: &W,
        input: W::Input,
        options: RunOptions,
    ) -> Finished<W::Output> {
        let run_id = options.run_id.clone().unwrap_or_else(RunId::generate);
        self.execute(workflow, run_id, Some(input), options).await
    }

    /// Runs `workflow` on every input, at most `concurrency` at once, in the current task, as a
    /// stream of results in the order the runs finish, with totals ([`crate::BulkRun::totals`]);
    /// [`crate::BulkRun::cancel`] stops it as a whole. The runs' writes share group commits.
    pub fn run_many<'a, W, I>(
        &'a self,
        workflow: &'a W,
        inputs: I,
        concurrency: usize,
    ) -> crate::BulkRun<'a, W::Output>
    where
        W: Durable + Sync,
        W::Output: 'a,
        I: IntoIterator<Item = W::Input>,
        I::IntoIter: Send + 'a,
        W::Input: 'a,
    {
        crate::BulkRun::new(inputs, concurrency, move |input, cancel| async move {
            let options = RunOptions::new().cancel_token(cancel);
            self.execute_checked(workflow, input, options).await.result
        })
    }

    /// Runs (or resumes, or returns the result of) the run `run_id` in the current task.
    ///
    /// The id is an idempotency key: if the run exists, `input` is ignored and the stored run
    /// continues (or its stored result is returned). If another worker (or task) owns the run,
    /// this waits for its result, and takes the run over if that owner dies. The history lists
    /// the steps restored from the journal.
    pub async fn execute<W: Durable + Sync>(
        &self,
        workflow: &W,
        run_id: RunId,
        input: Option<W::Input>,
        options: RunOptions,
    ) -> Finished<W::Output> {
        if input.is_some() && run_id.is_child() {
            return Finished {
                result: Err(reserved::<W>(run_id)),
                history: crate::scheduler::Recorder::new(W::definition()).into_history(),
            };
        }
        self.execute_as(workflow, run_id, input, options).await
    }

    /// [`DurableEngine::execute`] under any id, child ids included.
    pub(crate) async fn execute_as<W: Durable + Sync>(
        &self,
        workflow: &W,
        run_id: RunId,
        input: Option<W::Input>,
        options: RunOptions,
    ) -> Finished<W::Output> {
        let def = W::definition();
        let mut history = crate::scheduler::Recorder::new(def).into_history();
        let result = async {
            let mut record = self.open_run::<W>(&run_id, input, &options).await?;
            loop {
                if record.summary.status.is_finished() {
                    return finished_result::<W>(&record);
                }
                if !self.is_active(&run_id) {
                    let worker = self
                        .ensure_worker()
                        .await
                        .map_err(store_error::<W>(&run_id))?;
                    let claimed = self
                        .inner
                        .store
                        .claim_run(&worker, &run_id)
                        .await
                        .map_err(store_error::<W>(&run_id))?;
                    if let Some(claimed) = claimed {
                        let (outcome, recorded) = self
                            .drive_claim(workflow, claimed, options.clone(), false)
                            .await;
                        history = recorded;
                        if let Ok(result) = outcome {
                            return result;
                        }
                        // Suspended (the lease was lost): wait for the run's new owner.
                    }
                }
                self.wait_for_change(&run_id).await;
                record = self.load::<W>(&run_id).await?;
            }
        }
        .await;
        Finished { result, history }
    }

    /// Creates the run (idempotently) or loads it, and checks it belongs to `W`'s definition.
    async fn open_run<W: Durable>(
        &self,
        run_id: &RunId,
        input: Option<W::Input>,
        options: &RunOptions,
    ) -> Result<RunRecord, WorkflowError> {
        let def = W::definition();
        let record = match input {
            Some(input) => {
                self.remember_definition::<W>().await;
                let input = W::__encode_input(&input).map_err(|e| {
                    store_error::<W>(run_id)(StoreError::Database(format!(
                        "cannot encode the input: {e}"
                    )))
                })?;
                let new = NewRun {
                    run_id: run_id.clone(),
                    workflow: def.name.to_owned(),
                    version: def.version,
                    definition_hash: def.hash,
                    queue: options.queue.clone().unwrap_or_else(|| "default".into()),
                    deadline_at: options
                        .deadline_at
                        .or_else(|| options.deadline.map(|d| SystemTime::now() + d)),
                    input,
                    trace_context: crate::otel::context_for_new_run(options),
                };
                let record = self
                    .inner
                    .store
                    .create_run(&new)
                    .await
                    .map_err(store_error::<W>(run_id))?;
                if record.summary.workflow == def.name && !same_json(&record.input, &new.input) {
                    return Err(WorkflowError::InputConflict {
                        workflow: def.name,
                        run_id: run_id.clone(),
                    });
                }
                record
            }
            None => self.load::<W>(run_id).await?,
        };
        self.check_definition::<W>(&record).await?;
        Ok(record)
    }

    async fn load<W: Durable>(&self, run_id: &RunId) -> Result<RunRecord, WorkflowError> {
        self.inner
            .store
            .load_run(run_id)
            .await
            .map_err(store_error::<W>(run_id))?
            .ok_or_else(|| store_error::<W>(run_id)(StoreError::UnknownRun(run_id.clone())))
    }

    /// Waits until the run finishes and returns its result (decoded with `W`).
    pub async fn wait<W: Durable>(&self, run_id: &RunId) -> Result<W::Output, WorkflowError> {
        loop {
            let record = self.load::<W>(run_id).await?;
            self.check_definition::<W>(&record).await?;
            if record.summary.status.is_finished() {
                return finished_result::<W>(&record);
            }
            self.wait_for_change(run_id).await;
        }
    }

    /// Waits a little for a run to change: its local end, or a poll interval.
    async fn wait_for_change(&self, run_id: &RunId) {
        let finished = self.inner.finished.notified();
        let poll = if self.is_active(run_id) {
            POLL * 5
        } else {
            POLL
        };
        let _ = tokio::time::timeout(poll, finished).await;
    }

    /// Registers `workflow` (see [`DurableEngine::register`]) so that this engine's worker
    /// resumes its interrupted runs in background tasks, and reports them. Unfinished runs of
    /// another definition of the workflow are refused and left untouched.
    pub async fn recover<W>(&self, workflow: &W) -> Result<Recovery, StoreError>
    where
        W: Durable + Clone + Send + Sync + 'static,
        W::Input: 'static,
    {
        let def = W::definition();
        self.register(workflow).await?;
        crate::worker::sweep(self).await;
        let mut recovery = Recovery::default();
        let mut filter = RunFilter {
            workflow: Some(def.name.to_owned()),
            ..RunFilter::default()
        };
        loop {
            let page = self.inner.store.list(&filter).await?;
            recovery.unreadable.extend(page.unreadable);
            for run in page.runs {
                if run.status.is_finished() {
                    continue;
                }
                if run.definition_hash != def.hash {
                    recovery
                        .refused
                        .push(self.version_mismatch::<W>(&run).await);
                } else {
                    recovery.resumed.push(run.run_id);
                }
            }
            match page.next {
                Some(next) => filter.after = Some(next),
                None => break,
            }
        }
        self.inner.claim_bell.notify_one();
        Ok(recovery)
    }

    /// Resumes one run in the current task and returns its result and history.
    pub async fn resume<W: Durable + Sync>(
        &self,
        workflow: &W,
        run_id: &RunId,
    ) -> Finished<W::Output> {
        self.execute(workflow, run_id.clone(), None, RunOptions::default())
            .await
    }

    /// Cancels a run, wherever it executes: the cancel is stored, the owning worker (in this
    /// process or another) drops the run's in-flight steps within a second and compensates its
    /// completed saga steps; a parked run is woken for that. Returns the run's status when the
    /// cancel was stored (a finished run is left as it is).
    pub async fn cancel(&self, run_id: &RunId) -> Result<RunStatus, StoreError> {
        let status = self.inner.store.request_cancel(run_id).await?;
        self.cancel_local(run_id);
        self.inner.claim_bell.notify_one();
        Ok(status)
    }

    /// The stored record of a run: status, owner, what it waits for, output or error.
    pub async fn status(&self, run_id: &RunId) -> Result<RunRecord, StoreError> {
        self.inner
            .store
            .load_run(run_id)
            .await?
            .ok_or_else(|| StoreError::UnknownRun(run_id.clone()))
    }

    /// A page of runs, oldest first, without payloads.
    pub async fn list(&self, filter: &RunFilter) -> Result<RunPage, StoreError> {
        self.inner.store.list(filter).await
    }

    /// The run's journal, checksums verified: its history of completions, waits, signals
    /// and compensations.
    pub async fn journal(&self, run_id: &RunId) -> Result<Vec<JournalRecord>, StoreError> {
        self.inner.store.journal(run_id).await
    }

    /// Stops the worker gracefully: it claims nothing more, gives the runs it executes
    /// `grace` to finish, then stops the others (nothing more is written for them) and
    /// releases them to other workers, and leaves the store.
    pub async fn shutdown(&self, grace: Duration) -> Result<(), StoreError> {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        let until = tokio::time::Instant::now() + grace;
        while self.active_count() > 0 && tokio::time::Instant::now() < until {
            let _ = tokio::time::timeout(POLL, self.inner.finished.notified()).await;
        }
        let worker = self.inner.identity.current();
        self.lose_identity(&worker);
        while self.active_count() > 0 {
            self.inner.finished.notified().await;
        }
        self.inner.store.deregister_worker(&worker).await
    }

    /// How often this engine's worker lost a run's lease, since it was created.
    pub fn fencing(&self) -> Fencing {
        Fencing {
            rejected_writes: self.inner.rejected_writes.load(Ordering::Relaxed),
            self_fenced_runs: self.inner.fenced_runs.load(Ordering::Relaxed),
        }
    }

    // ---- for the worker loops and run drivers ----

    pub(crate) fn count_fenced(&self, rejected: bool) {
        let counter = if rejected {
            &self.inner.rejected_writes
        } else {
            &self.inner.fenced_runs
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn downgrade(&self) -> WeakEngine {
        WeakEngine(Arc::downgrade(&self.inner))
    }

    pub(crate) fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    pub(crate) fn worker_options(&self) -> &WorkerOptions {
        &self.inner.options
    }

    pub(crate) fn store_arc(&self) -> Arc<dyn Store> {
        self.inner.store.clone()
    }

    pub(crate) fn claim_bell(&self) -> Arc<Notify> {
        self.inner.claim_bell.clone()
    }

    pub(crate) fn claimed(&self) -> &Arc<ClaimedRuns> {
        &self.inner.claimed
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::SeqCst)
    }

    pub(crate) fn active_count(&self) -> usize {
        lock(&self.inner.active).len()
    }

    pub(crate) fn is_active(&self, run_id: &RunId) -> bool {
        lock(&self.inner.active).contains_key(run_id)
    }

    /// Refuses a run of another workflow, or an unfinished run of another definition.
    async fn check_definition<W: Durable>(&self, record: &RunRecord) -> Result<(), WorkflowError> {
        check_workflow::<W>(record)?;
        let run = &record.summary;
        if run.definition_hash != W::definition().hash && !run.status.is_finished() {
            return Err(self.version_mismatch::<W>(run).await);
        }
        Ok(())
    }

    /// The error for a run of another definition of `W`, saying what changed when the store
    /// has the run's definition.
    async fn version_mismatch<W: Durable>(&self, run: &RunSummary) -> WorkflowError {
        let def = W::definition();
        let stored = self
            .store()
            .definition(&run.workflow, run.definition_hash)
            .await;
        let changes = match stored {
            Ok(Some(stored)) => {
                crate::definition_changes::changes(&stored.canonical, def.canonical)
            }
            _ => Vec::new(),
        };
        WorkflowError::VersionMismatch {
            workflow: def.name,
            run_id: run.run_id.clone(),
            stored_version: run.version,
            stored_hash: run.definition_hash,
            current_version: def.version,
            current_hash: def.hash,
            changes,
        }
    }

    /// Stores `W`'s definition, once per engine (see [`Store::put_definition`]).
    async fn remember_definition<W: Durable>(&self) {
        let def = W::definition();
        if !lock(&self.inner.stored_definitions).insert(def.hash) {
            return;
        }
        let stored = StoredDefinition {
            workflow: def.name.to_owned(),
            version: def.version,
            hash: def.hash,
            canonical: def.canonical.to_owned(),
            signal_schemas: W::__signal_schemas()
                .into_iter()
                .filter_map(|(name, schema)| Some((name.to_owned(), schema?)))
                .collect(),
        };
        if let Err(error) = self.store().put_definition(&stored).await {
            tracing::warn!(workflow = def.name, %error, "cannot store the definition; will retry");
            lock(&self.inner.stored_definitions).remove(&def.hash);
        }
    }

    /// Registers this engine's worker and starts its loops, once.
    async fn ensure_worker(&self) -> Result<WorkerId, StoreError> {
        let first = !self.inner.loops.is_completed();
        let worker = crate::worker::register(self).await?;
        self.inner.loops.call_once(|| spawn_loops(self));
        if first {
            // A process restarted after a crash takes its predecessor's runs over at once.
            crate::worker::sweep(self).await;
        }
        Ok(worker)
    }

    /// Cancels a run executing in this process (its compensations run).
    pub(crate) fn cancel_local(&self, run_id: &RunId) {
        if let Some(control) = lock(&self.inner.active).get(run_id) {
            control.cancel.cancel();
        }
    }

    /// The worker lost its lease (or fenced itself): stop every run it executes at once and
    /// take a new identity.
    pub(crate) fn lose_identity(&self, worker: &WorkerId) {
        if self.inner.identity.replace(worker) {
            for control in lock(&self.inner.active).values() {
                control.fence.cancel();
            }
        }
    }

    /// Marks a run as executing here (cancelled with `cancel`, if given); `None` if it
    /// already is.
    fn activate(
        &self,
        run_id: &RunId,
        cancel: Option<&crate::options::CancellationToken>,
    ) -> Option<ActiveRun<'_>> {
        let mut active = lock(&self.inner.active);
        if active.contains_key(run_id) {
            return None;
        }
        let control = RunControl {
            cancel: cancel.map(|c| c.child_token()).unwrap_or_default(),
            fence: Default::default(),
        };
        active.insert(run_id.clone(), control);
        Some(ActiveRun {
            engine: self,
            run_id: run_id.clone(),
        })
    }

    fn control(&self, run_id: &RunId) -> RunControl {
        lock(&self.inner.active)
            .get(run_id)
            .cloned()
            .unwrap_or_default()
    }

    fn bell(&self, run_id: &RunId) -> Arc<Notify> {
        lock(&self.inner.signal_bells)
            .entry(run_id.clone())
            .or_default()
            .clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Maps a store error of run `run_id` of `W` into a [`WorkflowError`].
fn store_error<W: Durable>(run_id: &RunId) -> impl Fn(StoreError) -> WorkflowError + '_ {
    move |error| WorkflowError::Store {
        workflow: W::definition().name,
        run_id: run_id.clone(),
        error,
    }
}

/// The error for a caller-chosen id in the child runs' namespace.
fn reserved<W: Durable>(run_id: RunId) -> WorkflowError {
    WorkflowError::ReservedRunId {
        workflow: W::definition().name,
        run_id,
    }
}

/// True when two encoded values are the same value (maps compare whatever their key order).
fn same_json(a: &[u8], b: &[u8]) -> bool {
    a == b
        || matches!(
            (
                serde_json::from_slice::<serde_json::Value>(a),
                serde_json::from_slice::<serde_json::Value>(b),
            ),
            (Ok(x), Ok(y)) if x == y
        )
}

/// Refuses a run of another workflow.
fn check_workflow<W: Durable>(record: &RunRecord) -> Result<(), WorkflowError> {
    let def = W::definition();
    let run = &record.summary;
    if run.workflow != def.name {
        return Err(WorkflowError::WrongWorkflow {
            workflow: def.name,
            run_id: run.run_id.clone(),
            found: run.workflow.clone(),
        });
    }
    Ok(())
}

/// A run executing in this engine; unregisters it however its execution ends (completed,
/// suspended or dropped), and wakes result waiters.
struct ActiveRun<'e> {
    engine: &'e DurableEngine,
    run_id: RunId,
}

impl Drop for ActiveRun<'_> {
    fn drop(&mut self) {
        lock(&self.engine.inner.active).remove(&self.run_id);
        lock(&self.engine.inner.signal_bells).remove(&self.run_id);
        self.engine.inner.finished.notify_waiters();
        self.engine.inner.claimed.freed();
    }
}
