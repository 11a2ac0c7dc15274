//! [`RunHandle`]: one run, on any engine: wait for it, look at it, cancel it, signal it.
//! [`SignalName`]: a typed signal of a workflow (`Expense::signals().decision`), so a
//! misspelled signal or a payload of the wrong type is a compile error.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::definition::StepIndex;
use crate::error::WorkflowError;
use crate::events::RunEvent;
use crate::history::RunHistory;
use crate::run_id::RunId;
use crate::store::RunStatus;
use crate::testing::StepHandle;
use crate::workflow::Workflow;

/// Signal `name` of workflow `W`, whose payload is a `T`. The `#[workflow]` macro makes one
/// per signal: `W::signals().<name>`.
///
/// ```
/// use workflow_core::prelude::*;
///
/// #[derive(Clone)]
/// struct Expense;
///
/// #[workflow]
/// impl Expense {
///     #[step]
///     async fn submit(&self, amount: u32) -> u32 { amount }
///
///     #[step(after = submit)]
///     async fn decide(&self, amount: u32, approval: Signal<bool>) -> String {
///         format!("{amount}: {:?}", approval.received())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let engine = Engine::in_memory();
/// let run = engine.start(&Expense, 120).await.unwrap();
/// run.signal(Expense::signals().approval, true).await.unwrap();
/// assert_eq!(run.wait().await.unwrap(), "120: Some(true)");
/// # }
/// ```
pub struct SignalName<W, T> {
    step: StepIndex,
    name: &'static str,
    _types: PhantomData<fn() -> (W, T)>,
}

impl<W, T> SignalName<W, T> {
    /// Used by the `#[workflow]` macro: the signal `name` that step `step` waits for.
    #[doc(hidden)]
    pub const fn new(step: StepIndex, name: &'static str) -> Self {
        SignalName {
            step,
            name,
            _types: PhantomData,
        }
    }

    /// The signal's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// A step that waits for it.
    pub(crate) fn step(&self) -> StepIndex {
        self.step
    }
}

impl<W, T> Clone for SignalName<W, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<W, T> Copy for SignalName<W, T> {}

impl<W, T> fmt::Debug for SignalName<W, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignalName({})", self.name)
    }
}

/// What an engine does for a [`RunHandle`].
pub(crate) trait RunBackend<W: Workflow>: Send + Sync {
    fn wait<'a>(&'a self, run_id: &'a RunId) -> BoxFuture<'a, Result<W::Output, WorkflowError>>;
    fn status<'a>(&'a self, run_id: &'a RunId) -> BoxFuture<'a, Result<RunStatus, WorkflowError>>;
    fn cancel<'a>(&'a self, run_id: &'a RunId) -> BoxFuture<'a, Result<(), WorkflowError>>;
    /// Delivers a payload made by a [`SignalName`]: `value` is the payload (a `T`), `make`
    /// clones it into the step's boxed `Signal<T>`.
    fn signal<'a>(
        &'a self,
        run_id: &'a RunId,
        step: StepIndex,
        value: Box<dyn Any + Send + Sync>,
        make: Arc<dyn Fn() -> Box<dyn Any + Send> + Send + Sync>,
    ) -> BoxFuture<'a, Result<(), WorkflowError>>;
    /// Delivers a signal to the child run of step `step`: the payload of its step
    /// `child_step`'s `Signal<T>` (see [`RunBackend::signal`]).
    fn signal_child<'a>(
        &'a self,
        run_id: &'a RunId,
        step: StepIndex,
        child_step: StepIndex,
        value: Box<dyn Any + Send + Sync>,
        make: Arc<dyn Fn() -> Box<dyn Any + Send> + Send + Sync>,
    ) -> BoxFuture<'a, Result<(), WorkflowError>>;
    fn events(&self, run_id: &RunId) -> BoxStream<'static, RunEvent<W::Step>>;
    fn history<'a>(&'a self, run_id: &'a RunId)
        -> BoxFuture<'a, Result<RunHistory, WorkflowError>>;
    /// Checks the name and decodes the JSON payload before anything is stored.
    fn signal_json<'a>(
        &'a self,
        run_id: &'a RunId,
        name: &'a str,
        payload: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<(), WorkflowError>>;
}

/// One run of workflow `W`, on any engine: from [`crate::Engine::start`],
/// [`crate::DurableEngine::start`] or `handle::<W>(run_id)` (which reattaches to a run of a
/// durable store from any process). Cheap to clone.
pub struct RunHandle<W: Workflow> {
    run_id: RunId,
    backend: Arc<dyn RunBackend<W>>,
}

impl<W: Workflow> Clone for RunHandle<W> {
    fn clone(&self) -> Self {
        RunHandle {
            run_id: self.run_id.clone(),
            backend: self.backend.clone(),
        }
    }
}

impl<W: Workflow> fmt::Debug for RunHandle<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RunHandle({})", self.run_id)
    }
}

impl<W: Workflow> RunHandle<W> {
    pub(crate) fn new(run_id: RunId, backend: Arc<dyn RunBackend<W>>) -> Self {
        RunHandle { run_id, backend }
    }

    /// The run's id.
    pub fn id(&self) -> &RunId {
        &self.run_id
    }

    /// Waits until the run finishes: its output, or the same error [`crate::Engine::run`]
    /// gives (the failed step, its cause, the compensations), also for a run of a durable
    /// store that finished in another process.
    pub async fn wait(&self) -> Result<W::Output, WorkflowError> {
        self.backend.wait(&self.run_id).await
    }

    /// Where the run is now.
    pub async fn status(&self) -> Result<RunStatus, WorkflowError> {
        self.backend.status(&self.run_id).await
    }

    /// Cancels the run wherever it executes: its in-flight steps are dropped, its completed
    /// saga steps compensated, and it fails with [`WorkflowError::Cancelled`]. A finished run
    /// is left as it is.
    pub async fn cancel(&self) -> Result<(), WorkflowError> {
        self.backend.cancel(&self.run_id).await
    }

    /// Sends a signal: `handle.signal(Expense::signals().decision, Decision::Approve)`. The
    /// name and the payload type are checked at compile time. A signal sent before the run
    /// waits for it is kept; each is consumed by exactly one wait; a parked run is woken.
    pub async fn signal<T>(&self, signal: SignalName<W, T>, payload: T) -> Result<(), WorkflowError>
    where
        T: Clone + Send + Sync + 'static,
    {
        let make = signal_payload(&payload);
        self.backend
            .signal(&self.run_id, signal.step(), Box::new(payload), make)
            .await
    }

    /// Sends a signal to the child workflow that step `step` runs (`workflow = Child`):
    /// `run.signal_child(Trip::steps().approval, Approval::signals().decision, true)`. The
    /// child's signal name and payload type are checked at compile time, its type when sent
    /// ([`WorkflowError::NoChildRun`] if the step runs another workflow, or no child now).
    pub async fn signal_child<In, Out, C, T>(
        &self,
        step: StepHandle<W, In, Out>,
        signal: SignalName<C, T>,
        payload: T,
    ) -> Result<(), WorkflowError>
    where
        C: Workflow,
        T: Clone + Send + Sync + 'static,
    {
        let def = W::definition();
        let runs = def.steps[step.index() as usize]
            .child
            .map(|child| (child.definition)().name);
        if runs != Some(C::definition().name) {
            return Err(no_child_run::<W>(
                &self.run_id,
                step.index(),
                C::definition().name,
            ));
        }
        let make = signal_payload(&payload);
        self.backend
            .signal_child(
                &self.run_id,
                step.index(),
                signal.step(),
                Box::new(payload),
                make,
            )
            .await
    }

    /// The run's events, in order, from its start (also when observed late) until it
    /// finishes: steps started, completed, failed (with `will_retry`) and skipped, waits and
    /// signals, `for_each` progress, compensation, and the run's end. Steps are named by the
    /// workflow's step enum (`W::Step`). On a durable engine the events come from the journal,
    /// so another process can follow the run; they carry what the journal records (no
    /// attempt starts, no durations).
    pub fn events(&self) -> BoxStream<'static, RunEvent<W::Step>> {
        self.backend.events(&self.run_id)
    }

    /// The run's history so far: each step's outcome, attempts, completions and (on a durable
    /// engine) output as JSON, and the path taken. Draw it with
    /// [`RunHistory::to_mermaid`].
    pub async fn history(&self) -> Result<RunHistory, WorkflowError> {
        self.backend.history(&self.run_id).await
    }

    /// The untyped entry point, for a command line or an HTTP endpoint: the name is checked
    /// ([`WorkflowError::UnknownSignal`]) and the payload decoded as the signal's type
    /// ([`WorkflowError::BadSignal`]) before anything is stored, so a bad signal never
    /// reaches the run. Durable engines only: the in-memory engine takes typed signals
    /// ([`RunHandle::signal`]) and refuses JSON with [`WorkflowError::BadSignal`].
    pub async fn signal_json(
        &self,
        name: &str,
        payload: &serde_json::Value,
    ) -> Result<(), WorkflowError> {
        self.backend.signal_json(&self.run_id, name, payload).await
    }
}

/// Makes a step's boxed `Signal<T>` from a clone of `payload`, for each attempt.
fn signal_payload<T: Clone + Send + Sync + 'static>(
    payload: &T,
) -> Arc<dyn Fn() -> Box<dyn Any + Send> + Send + Sync> {
    let value = payload.clone();
    Arc::new(move || -> Box<dyn Any + Send> { Box::new(crate::Signal::Received(value.clone())) })
}

/// [`WorkflowError::NoChildRun`] for step `step` of a run of `W`.
pub(crate) fn no_child_run<W: Workflow>(
    run_id: &RunId,
    step: StepIndex,
    child: &'static str,
) -> WorkflowError {
    WorkflowError::NoChildRun {
        workflow: W::definition().name,
        run_id: run_id.clone(),
        step: W::definition().steps[step as usize].name,
        child,
    }
}

/// The first step of `W` that waits for signal `name`, or [`WorkflowError::UnknownSignal`].
pub(crate) fn signal_step<W: Workflow>(
    run_id: &RunId,
    name: &str,
) -> Result<StepIndex, WorkflowError> {
    let def = W::definition();
    def.steps
        .iter()
        .position(|s| s.signal.is_some_and(|sig| sig.name == name))
        .map(|i| i as StepIndex)
        .ok_or_else(|| {
            // Each signal once, in step order (two steps may wait for the same one).
            let mut known: Vec<&'static str> = Vec::new();
            for signal in def.steps.iter().filter_map(|s| s.signal) {
                if !known.contains(&signal.name) {
                    known.push(signal.name);
                }
            }
            WorkflowError::UnknownSignal {
                workflow: def.name,
                run_id: run_id.clone(),
                signal: name.to_owned(),
                known,
            }
        })
}
