//! Run handles on a durable engine: `start` returns one, `handle::<W>(run_id)` reattaches to
//! any run of the store (from any process); every operation is a store read or write.

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::BoxStream;

use super::{lock, store_error, DurableEngine};
use crate::definition::StepIndex;
use crate::error::WorkflowError;
use crate::events::RunEvent;
use crate::handle::{no_child_run, signal_step, RunBackend, RunHandle};
use crate::history::RunHistory;
use crate::options::RunOptions;
use crate::run_id::RunId;
use crate::store::{RunStatus, StoreError};
use crate::workflow::Durable;

/// [`RunBackend`] of a durable engine for runs of `W`.
struct DurableRuns<W> {
    engine: DurableEngine,
    _workflow: PhantomData<fn() -> W>,
}

impl DurableEngine {
    /// Starts a run of `workflow` under a fresh id and returns its handle once it is stored;
    /// this engine's worker (or any worker that registered the workflow) executes it.
    pub async fn start<W>(
        &self,
        workflow: &W,
        input: W::Input,
    ) -> Result<RunHandle<W>, WorkflowError>
    where
        W: Durable + Clone + Send + Sync + 'static,
        W::Input: 'static,
    {
        self.start_with(workflow, input, RunOptions::default())
            .await
    }

    /// Starts the run `run_id`. Idempotent: if the run exists with the same input, nothing new
    /// starts and its handle is returned; with another input,
    /// [`WorkflowError::InputConflict`].
    pub async fn start_with_id<W>(
        &self,
        workflow: &W,
        run_id: impl Into<RunId>,
        input: W::Input,
    ) -> Result<RunHandle<W>, WorkflowError>
    where
        W: Durable + Clone + Send + Sync + 'static,
        W::Input: 'static,
    {
        let options = RunOptions::default().run_id(run_id);
        self.start_with(workflow, input, options).await
    }

    /// Starts a run with options: its id ([`RunOptions::run_id`]), a queue, a deadline
    /// (stored with the run, so a restart does not restart its clock).
    pub async fn start_with<W>(
        &self,
        workflow: &W,
        input: W::Input,
        options: RunOptions,
    ) -> Result<RunHandle<W>, WorkflowError>
    where
        W: Durable + Clone + Send + Sync + 'static,
        W::Input: 'static,
    {
        let run_id = options.run_id.clone().unwrap_or_else(RunId::generate);
        if run_id.is_child() {
            return Err(super::reserved::<W>(run_id));
        }
        self.open_run::<W>(&run_id, Some(input), &options).await?;
        if self.worker_options().claim {
            self.register(workflow)
                .await
                .map_err(store_error::<W>(&run_id))?;
        }
        self.claim_bell().notify_one();
        Ok(self.handle(run_id))
    }

    /// Stores a new run of `workflow` without executing it here (unless this engine's worker
    /// registered the workflow): a worker that has its definition claims it, or
    /// [`DurableEngine::resume`] drives it in the caller's task. Signals sent before it runs
    /// are kept. Idempotent on [`RunOptions::run_id`], like `start`.
    pub async fn create<W: Durable + 'static>(
        &self,
        _workflow: &W,
        input: W::Input,
        options: RunOptions,
    ) -> Result<RunHandle<W>, WorkflowError> {
        let run_id = options.run_id.clone().unwrap_or_else(RunId::generate);
        if run_id.is_child() {
            return Err(super::reserved::<W>(run_id));
        }
        self.open_run::<W>(&run_id, Some(input), &options).await?;
        Ok(self.handle(run_id))
    }

    /// A handle on the run `run_id` of `W`, started by any process. Nothing is read until it
    /// is used: a run that does not exist gives [`crate::store::StoreError::UnknownRun`] then,
    /// and a run of another workflow [`WorkflowError::WrongWorkflow`].
    pub fn handle<W: Durable + 'static>(&self, run_id: impl Into<RunId>) -> RunHandle<W> {
        let backend = DurableRuns::<W> {
            engine: self.clone(),
            _workflow: PhantomData,
        };
        RunHandle::new(run_id.into(), Arc::new(backend))
    }

    /// Encodes `payload` for the `Signal<T>` of step `step` of `W` and stores it for run
    /// `run_id` (see [`DurableEngine::send_signal`]).
    pub(crate) async fn send_typed_signal<W: Durable>(
        &self,
        run_id: &RunId,
        step: StepIndex,
        payload: &(dyn Any + Send + Sync),
    ) -> Result<(), WorkflowError> {
        let name = signal_name::<W>(step);
        let bytes = W::__encode_signal(step, payload).map_err(|e| WorkflowError::BadSignal {
            workflow: W::definition().name,
            run_id: run_id.clone(),
            signal: name,
            reason: e.to_string(),
        })?;
        self.send_signal::<W>(run_id, name, bytes).await
    }

    /// Stores an encoded signal for a run of `W` and wakes whoever waits for it here. A run of
    /// another workflow is refused ([`WorkflowError::WrongWorkflow`]).
    async fn send_signal<W: Durable>(
        &self,
        run_id: &RunId,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<(), WorkflowError> {
        let record = self.load::<W>(run_id).await?;
        super::check_workflow::<W>(&record)?;
        self.store()
            .send_signal(run_id, name, bytes)
            .await
            .map_err(store_error::<W>(run_id))?;
        if let Some(bell) = lock(&self.inner.signal_bells).get(run_id) {
            bell.notify_waiters();
        }
        self.claim_bell().notify_one();
        Ok(())
    }
}

impl<W: Durable + 'static> RunBackend<W> for DurableRuns<W> {
    fn wait<'a>(&'a self, run_id: &'a RunId) -> BoxFuture<'a, Result<W::Output, WorkflowError>> {
        Box::pin(self.engine.wait::<W>(run_id))
    }

    fn status<'a>(&'a self, run_id: &'a RunId) -> BoxFuture<'a, Result<RunStatus, WorkflowError>> {
        Box::pin(async move {
            let record = self.engine.load::<W>(run_id).await?;
            super::check_workflow::<W>(&record)?;
            Ok(record.summary.status)
        })
    }

    fn cancel<'a>(&'a self, run_id: &'a RunId) -> BoxFuture<'a, Result<(), WorkflowError>> {
        Box::pin(async move {
            self.engine
                .cancel(run_id)
                .await
                .map(drop)
                .map_err(store_error::<W>(run_id))
        })
    }

    fn signal<'a>(
        &'a self,
        run_id: &'a RunId,
        step: StepIndex,
        value: Box<dyn Any + Send + Sync>,
        _make: Arc<dyn Fn() -> Box<dyn Any + Send> + Send + Sync>,
    ) -> BoxFuture<'a, Result<(), WorkflowError>> {
        Box::pin(async move {
            self.engine
                .send_typed_signal::<W>(run_id, step, &*value)
                .await
        })
    }

    fn signal_child<'a>(
        &'a self,
        run_id: &'a RunId,
        step: StepIndex,
        child_step: StepIndex,
        value: Box<dyn Any + Send + Sync>,
        _make: Arc<dyn Fn() -> Box<dyn Any + Send> + Send + Sync>,
    ) -> BoxFuture<'a, Result<(), WorkflowError>> {
        Box::pin(async move {
            let def = &W::definition().steps[step as usize];
            let child_name = def.child.map_or("?", |child| (child.definition)().name);
            let Some(durable) = W::__child(step) else {
                return Err(no_child_run::<W>(run_id, step, child_name));
            };
            // The latest attempt's child.
            for attempt in (1..=def.policy.retries + 1).rev() {
                let child = RunId::child(run_id, def.name, None, attempt);
                match self.engine.status(&child).await {
                    Ok(_) => {
                        let engine = self.engine.clone();
                        return (durable.signal)(engine, child, child_step, value).await;
                    }
                    Err(StoreError::UnknownRun(_)) => continue,
                    Err(error) => return Err(store_error::<W>(run_id)(error)),
                }
            }
            Err(no_child_run::<W>(run_id, step, child_name))
        })
    }

    fn events(&self, run_id: &RunId) -> BoxStream<'static, RunEvent<W::Step>> {
        self.engine.follow::<W>(run_id.clone())
    }

    fn history<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<RunHistory, WorkflowError>> {
        Box::pin(self.engine.stored_history::<W>(run_id))
    }

    fn signal_json<'a>(
        &'a self,
        run_id: &'a RunId,
        name: &'a str,
        payload: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<(), WorkflowError>> {
        Box::pin(async move {
            let step = signal_step::<W>(run_id, name)?;
            let bytes = serde_json::to_vec(payload).unwrap_or_default();
            let bad = |reason: String| WorkflowError::BadSignal {
                workflow: W::definition().name,
                run_id: run_id.clone(),
                signal: signal_name::<W>(step),
                reason,
            };
            W::__decode_signal(step, &bytes).map_err(|e| bad(e.to_string()))?;
            self.engine
                .send_signal::<W>(run_id, signal_name::<W>(step), bytes)
                .await
        })
    }
}

/// The signal that `step` of `W` waits for.
fn signal_name<W: Durable>(step: StepIndex) -> &'static str {
    W::definition().steps[step as usize]
        .signal
        .map_or("?", |s| s.name)
}
