//! [`DurableEngine`]: runs journaled in a [`Store`], resumed after a crash without running
//! again any step whose result was committed.
//!
//! Guarantees (each has a test):
//! - a step whose result was committed is never run again; each result is journaled once;
//! - steps run at least once: a step in flight at a crash runs again, so pass
//!   [`StepContext::idempotency_key`](crate::StepContext::idempotency_key) (stable per run,
//!   step and item) to side effects;
//! - compensations run at least once, in reverse completion order, and each finished one is
//!   journaled: a crash during compensation resumes compensation, not the forward path;
//! - signals are consumed exactly once (the consumption is journaled in the same
//!   transaction), and a signal sent before the wait began is kept;
//! - a run resumes only under the definition hash it started with
//!   ([`WorkflowError::VersionMismatch`] otherwise, and the run is left untouched);
//! - a corrupt or truncated journal record is detected by its checksum and reported
//!   ([`WorkflowError::Store`] with [`StoreError::Corrupt`]), never silently re-run.

mod journal;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tracing::Instrument;

use crate::context::RunInfo;
use crate::engine::Finished;
use crate::error::WorkflowError;
use crate::options::{CancellationToken, RunOptions};
use crate::run_id::RunId;
use crate::scheduler::{drive, Drive, Recorder};
use crate::store::{JournalRecord, NewRun, RunRecord, RunStatus, Store, StoreError};
use crate::workflow::Durable;

use journal::{decode_journal, StoreJournal};

/// How often a waiter re-reads the store, for changes made by other processes.
const POLL: Duration = Duration::from_millis(200);

/// An engine whose runs are journaled in a [`Store`]. Cheap to clone.
///
/// Create one with [`crate::Engine::sqlite`] (or [`DurableEngine::new`] over any store).
#[derive(Clone)]
pub struct DurableEngine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    /// Runs executing in this process, with their cancellation tokens.
    active: Mutex<HashMap<RunId, CancellationToken>>,
    /// Wakes signal waiters of a run.
    signal_bells: Mutex<HashMap<RunId, Arc<Notify>>>,
    /// Wakes result waiters when a run finishes.
    finished: Notify,
}

/// What [`DurableEngine::recover`] did.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Interrupted runs now executing again (in background tasks).
    pub resumed: Vec<RunId>,
    /// Interrupted runs that cannot resume (e.g. [`WorkflowError::VersionMismatch`]); they are
    /// left untouched in the store.
    pub refused: Vec<WorkflowError>,
}

impl DurableEngine {
    /// An engine over `store`.
    pub fn new(store: impl Store) -> Self {
        DurableEngine {
            inner: Arc::new(Inner {
                store: Arc::new(store),
                active: Mutex::new(HashMap::new()),
                signal_bells: Mutex::new(HashMap::new()),
                finished: Notify::new(),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    /// Runs `workflow` on `input` under a fresh id, to its end, in the current task.
    pub async fn run<W: Durable + Sync>(
        &self,
        workflow: W,
        input: W::Input,
    ) -> Result<W::Output, WorkflowError> {
        self.execute(
            &workflow,
            RunId::generate(),
            Some(input),
            RunOptions::default(),
        )
        .await
        .result
    }

    /// Runs (or resumes, or returns the result of) the run `run_id` in the current task.
    ///
    /// The id is an idempotency key: if the run exists, `input` is ignored and the stored run
    /// continues (or its stored result is returned). The history lists the steps restored
    /// from the journal.
    pub async fn execute<W: Durable + Sync>(
        &self,
        workflow: &W,
        run_id: RunId,
        input: Option<W::Input>,
        options: RunOptions,
    ) -> Finished<W::Output> {
        let def = W::definition();
        let mut recorder = Recorder::new(def);
        let result = self
            .execute_recorded(workflow, run_id, input, options, &mut recorder)
            .await;
        Finished {
            result,
            history: recorder.into_history(),
        }
    }

    async fn execute_recorded<W: Durable + Sync>(
        &self,
        workflow: &W,
        run_id: RunId,
        input: Option<W::Input>,
        options: RunOptions,
        recorder: &mut Recorder,
    ) -> Result<W::Output, WorkflowError> {
        let def = W::definition();
        let store_error = |error: StoreError| WorkflowError::Store {
            workflow: def.name,
            run_id: run_id.clone(),
            error,
        };
        let record = self.open_run::<W>(&run_id, input).await?;
        if record.status.is_finished() {
            return finished_result::<W>(&record);
        }
        let input = W::__decode_input(&record.input).map_err(|e| {
            store_error(StoreError::Corrupt {
                run_id: run_id.clone(),
                seq: 0,
                detail: format!("the run's input does not decode: {e}"),
            })
        })?;
        let records = self
            .inner
            .store
            .journal(&run_id)
            .await
            .map_err(store_error)?;
        let next_seq = records.len() as u64;
        let replay = decode_journal::<W>(&run_id, records).map_err(store_error)?;
        let token = options.cancel.clone().unwrap_or_default();
        self.lock_active().insert(run_id.clone(), token.clone());
        let _active = ActiveRun {
            engine: self,
            run_id: &run_id,
        };
        let bell = self.bell(&run_id);
        let mut journal =
            StoreJournal::<W>::new(self.inner.store.clone(), run_id.clone(), next_seq, bell);
        let run = Arc::new(RunInfo {
            workflow: def.name,
            run_id: run_id.clone(),
            engine: Some(self.clone()),
        });
        let span = tracing::info_span!("workflow_run", workflow = def.name, run_id = %run_id, durable = true);
        let mode = Drive {
            options: options.cancel_token(token),
            journal: Some(&mut journal),
            replay,
        };
        let result = drive(workflow, input, run, mode, Some(recorder))
            .instrument(span)
            .await;
        let saved = match stored_result::<W>(&result) {
            Ok(Some((status, output, error))) => {
                self.inner
                    .store
                    .finish(&run_id, status, output, error)
                    .await
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        saved.map_err(store_error)?;
        result
    }

    /// Creates the run (idempotently) or loads it, and checks it belongs to `W`'s definition.
    async fn open_run<W: Durable>(
        &self,
        run_id: &RunId,
        input: Option<W::Input>,
    ) -> Result<RunRecord, WorkflowError> {
        let def = W::definition();
        let store_error = |error: StoreError| WorkflowError::Store {
            workflow: def.name,
            run_id: run_id.clone(),
            error,
        };
        let record = match input {
            Some(input) => {
                let input = W::__encode_input(&input).map_err(|e| {
                    store_error(StoreError::Database(format!(
                        "cannot encode the input: {e}"
                    )))
                })?;
                let new = NewRun {
                    run_id: run_id.clone(),
                    workflow: def.name.to_owned(),
                    version: def.version,
                    definition_hash: def.hash,
                    input,
                };
                self.inner
                    .store
                    .create_run(&new)
                    .await
                    .map_err(store_error)?
            }
            None => self
                .inner
                .store
                .load_run(run_id)
                .await
                .map_err(store_error)?
                .ok_or_else(|| store_error(StoreError::UnknownRun(run_id.clone())))?,
        };
        if record.workflow != def.name {
            return Err(WorkflowError::WrongWorkflow {
                workflow: def.name,
                run_id: run_id.clone(),
                found: record.workflow,
            });
        }
        if record.definition_hash != def.hash && !record.status.is_finished() {
            return Err(WorkflowError::VersionMismatch {
                workflow: def.name,
                run_id: run_id.clone(),
                stored_version: record.version,
                stored_hash: record.definition_hash,
                current_version: def.version,
                current_hash: def.hash,
            });
        }
        Ok(record)
    }

    /// Starts a run in a background task and returns its id once the run is stored.
    pub async fn start<W>(&self, workflow: W, input: W::Input) -> Result<RunId, WorkflowError>
    where
        W: Durable + Send + Sync + 'static,
        W::Input: 'static,
    {
        self.start_with_id(RunId::generate(), workflow, input).await
    }

    /// Starts the run `run_id` in a background task. Idempotent: if the run exists, nothing
    /// new starts (an interrupted one is resumed) and the same id is returned.
    pub async fn start_with_id<W>(
        &self,
        run_id: impl Into<RunId>,
        workflow: W,
        input: W::Input,
    ) -> Result<RunId, WorkflowError>
    where
        W: Durable + Send + Sync + 'static,
        W::Input: 'static,
    {
        let run_id = run_id.into();
        let record = self.open_run::<W>(&run_id, Some(input)).await?;
        if !record.status.is_finished() && !self.lock_active().contains_key(&run_id) {
            self.spawn(workflow, run_id.clone());
        }
        Ok(run_id)
    }

    fn spawn<W: Durable + Send + Sync + 'static>(&self, workflow: W, run_id: RunId) {
        let engine = self.clone();
        // Registered before the task starts, so a second start does not spawn it twice; the
        // execution's guard unregisters it however it ends.
        let token = CancellationToken::new();
        self.lock_active().insert(run_id.clone(), token.clone());
        tokio::spawn(async move {
            let _active = ActiveRun {
                engine: &engine,
                run_id: &run_id,
            };
            let options = RunOptions::new().cancel_token(token);
            let finished = engine
                .execute(&workflow, run_id.clone(), None, options)
                .await;
            if let Err(error) = finished.result {
                tracing::warn!(%error, "background run ended with an error");
            }
        });
    }

    /// Waits until the run finishes and returns its result (decoded with `W`).
    pub async fn wait<W: Durable>(&self, run_id: &RunId) -> Result<W::Output, WorkflowError> {
        let def = W::definition();
        loop {
            let finished = self.inner.finished.notified();
            let record = self
                .inner
                .store
                .load_run(run_id)
                .await
                .map_err(|error| WorkflowError::Store {
                    workflow: def.name,
                    run_id: run_id.clone(),
                    error,
                })?
                .ok_or_else(|| WorkflowError::Store {
                    workflow: def.name,
                    run_id: run_id.clone(),
                    error: StoreError::UnknownRun(run_id.clone()),
                })?;
            if record.status.is_finished() {
                return finished_result::<W>(&record);
            }
            let _ = tokio::time::timeout(POLL, finished).await;
        }
    }

    /// Resumes every interrupted (running or waiting) run of `W` that is not executing in
    /// this engine, each in a background task. Runs started by another definition are refused
    /// and left untouched.
    pub async fn recover<W>(&self, workflow: W) -> Result<Recovery, StoreError>
    where
        W: Durable + Clone + Send + Sync + 'static,
        W::Input: 'static,
    {
        let def = W::definition();
        let mut recovery = Recovery::default();
        for status in [RunStatus::Running, RunStatus::Waiting] {
            for record in self.inner.store.list(Some(status)).await? {
                if record.workflow != def.name || self.lock_active().contains_key(&record.run_id) {
                    continue;
                }
                if record.definition_hash != def.hash {
                    recovery.refused.push(WorkflowError::VersionMismatch {
                        workflow: def.name,
                        run_id: record.run_id,
                        stored_version: record.version,
                        stored_hash: record.definition_hash,
                        current_version: def.version,
                        current_hash: def.hash,
                    });
                    continue;
                }
                self.spawn(workflow.clone(), record.run_id.clone());
                recovery.resumed.push(record.run_id);
            }
        }
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

    /// Delivers signal `name` with `payload` to a run, from any task or process. A signal sent
    /// before the run waits for it is kept; each signal is consumed by exactly one wait.
    pub async fn signal<T: serde::Serialize>(
        &self,
        run_id: &RunId,
        name: &str,
        payload: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(payload)
            .map_err(|e| StoreError::Database(format!("cannot encode signal `{name}`: {e}")))?;
        self.inner.store.send_signal(run_id, name, bytes).await?;
        if let Some(bell) = self
            .inner
            .signal_bells
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(run_id)
        {
            bell.notify_waiters();
        }
        Ok(())
    }

    /// Cancels a run executing in this engine: in-flight steps are dropped and completed saga
    /// steps compensated. Returns false if the run is not executing here.
    pub fn cancel(&self, run_id: &RunId) -> bool {
        match self.lock_active().get(run_id) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// The stored record of a run: status, what it waits for, output or error.
    pub async fn status(&self, run_id: &RunId) -> Result<RunRecord, StoreError> {
        self.inner
            .store
            .load_run(run_id)
            .await?
            .ok_or_else(|| StoreError::UnknownRun(run_id.clone()))
    }

    /// Runs with the given status (all with `None`), oldest first.
    pub async fn list(&self, status: Option<RunStatus>) -> Result<Vec<RunRecord>, StoreError> {
        self.inner.store.list(status).await
    }

    /// The run's journal, checksums verified: its history of completions, waits, signals
    /// and compensations.
    pub async fn journal(&self, run_id: &RunId) -> Result<Vec<JournalRecord>, StoreError> {
        self.inner.store.journal(run_id).await
    }

    fn lock_active(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, CancellationToken>> {
        self.inner.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bell(&self, run_id: &RunId) -> Arc<Notify> {
        self.inner
            .signal_bells
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(run_id.clone())
            .or_default()
            .clone()
    }
}

/// Unregisters a run executing in this engine when its execution ends, completes or is
/// dropped (an aborted task, a caller's timeout), and wakes result waiters.
struct ActiveRun<'e> {
    engine: &'e DurableEngine,
    run_id: &'e RunId,
}

impl Drop for ActiveRun<'_> {
    fn drop(&mut self) {
        self.engine.lock_active().remove(self.run_id);
        self.engine
            .inner
            .signal_bells
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(self.run_id);
        self.engine.inner.finished.notify_waiters();
    }
}

/// What to store at a run's end: status, encoded output, error text (`None`: leave the run as
/// it is, after a store failure, to be resumed).
#[allow(clippy::type_complexity)]
fn stored_result<W: Durable>(
    result: &Result<W::Output, WorkflowError>,
) -> Result<Option<(RunStatus, Option<Vec<u8>>, Option<String>)>, StoreError> {
    Ok(match result {
        Ok(output) => {
            let bytes = W::__encode_output(output)
                .map_err(|e| StoreError::Database(format!("cannot encode the output: {e}")))?;
            Some((RunStatus::Completed, Some(bytes), None))
        }
        Err(WorkflowError::Store { .. } | WorkflowError::Interrupted { .. }) => None,
        Err(error @ WorkflowError::Cancelled { .. }) => {
            Some((RunStatus::Cancelled, None, Some(error.to_string())))
        }
        Err(error) => Some((RunStatus::Failed, None, Some(error.to_string()))),
    })
}

/// The result of a run that finished before: its decoded output, or its stored error.
fn finished_result<W: Durable>(record: &RunRecord) -> Result<W::Output, WorkflowError> {
    let def = W::definition();
    let corrupt = |detail: String| WorkflowError::Store {
        workflow: def.name,
        run_id: record.run_id.clone(),
        error: StoreError::Corrupt {
            run_id: record.run_id.clone(),
            seq: 0,
            detail,
        },
    };
    match (&record.status, &record.output) {
        (RunStatus::Completed, Some(bytes)) => W::__decode_output(bytes)
            .map_err(|e| corrupt(format!("the stored output does not decode: {e}"))),
        (RunStatus::Completed, None) => Err(corrupt("completed without a stored output".into())),
        _ => Err(WorkflowError::Stopped {
            workflow: def.name,
            run_id: record.run_id.clone(),
            cause: record
                .error
                .clone()
                .unwrap_or_else(|| record.status.as_str().to_owned()),
            report: Box::default(),
        }),
    }
}
