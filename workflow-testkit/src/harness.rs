//! [`Harness`]: a workflow, its mocks and faults, and the engine it runs on.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use workflow_core::store::StoreError;
use workflow_core::testing::{Fault, MockFn, StepHandle, TestPlan};
use workflow_core::{
    Definition, Durable, DurableEngine, Engine, RunId, RunOptions, Signal, SignalFree, SignalName,
    StepError, Workflow, WorkflowError,
};

use crate::run::{DurableRun, TestRun};
use crate::temp::TempStore;

/// The in-memory backend of a [`Harness`] (from [`Harness::new`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct InMemory;

/// The durable backend of a [`Harness`]: an SQLite file (from [`Harness::sqlite`] or
/// [`Harness::sqlite_temp`]).
pub struct Sqlite {
    engine: DurableEngine,
    path: PathBuf,
    temp: Option<Arc<TempStore>>,
    signals: Vec<SendSignal>,
}

/// Sends one queued signal to a run.
type SendSignal =
    Box<dyn FnOnce(DurableEngine, RunId) -> BoxFuture<'static, Result<(), WorkflowError>> + Send>;

/// One change to the run's [`TestPlan`]; kept so a resumed run gets the same plan.
type Edit = Box<dyn Fn(&mut TestPlan) + Send + Sync>;

/// Runs one workflow in a test, with typed mocks, injected faults and a crash point.
///
/// Build it with [`Harness::new`] (in memory) or [`Harness::sqlite`] /
/// [`Harness::sqlite_temp`] (durable), configure it, then [`run`](Harness::run) it once.
/// Every configuration method takes a step handle from the generated `W::steps()`, so a
/// misspelled step or a mock of the wrong type does not compile.
pub struct Harness<W, B = InMemory> {
    workflow: W,
    backend: B,
    edits: Vec<Edit>,
    crash: Option<Edit>,
    deadline: Option<Duration>,
}

impl<W: Workflow> Harness<W, InMemory> {
    /// A harness running `workflow` on an in-memory engine.
    pub fn new(workflow: W) -> Self {
        Harness {
            workflow,
            backend: InMemory,
            edits: Vec::new(),
            crash: None,
            deadline: None,
        }
    }
}

impl<W: Durable> Harness<W, Sqlite> {
    /// A harness running `workflow` on a durable engine over the SQLite file at `path`
    /// (created if missing; the test owns it). Panics if the store cannot be opened.
    pub async fn sqlite(workflow: W, path: impl AsRef<Path>) -> Self {
        Self::open(workflow, path.as_ref().to_path_buf(), None).await
    }

    /// Like [`Harness::sqlite`] on a fresh file in the system temp directory, deleted (with
    /// its `-wal` and `-shm` files) when the harness and every [`TestRun`] from it are dropped.
    pub async fn sqlite_temp(workflow: W) -> Self {
        let temp = Arc::new(TempStore::new(W::definition().name));
        let path = temp.path().to_path_buf();
        Self::open(workflow, path, Some(temp)).await
    }

    async fn open(workflow: W, path: PathBuf, temp: Option<Arc<TempStore>>) -> Self {
        let engine = open_engine(&path).await;
        Harness {
            workflow,
            backend: Sqlite {
                engine,
                path,
                temp,
                signals: Vec::new(),
            },
            edits: Vec::new(),
            crash: None,
            deadline: None,
        }
    }

    /// Delivers the signal that `step` waits for, with `payload`, as soon as the run is stored
    /// (a signal sent before the wait is kept until the step consumes it). The payload's type
    /// is checked against the step's `Signal<T>` parameter; a step without one does not
    /// compile. Queue several to feed several waits of the same signal.
    pub fn signal<In, Out, T>(mut self, step: StepHandle<W, In, Out>, payload: T) -> Self
    where
        W: 'static,
        In: SignalStep<Payload = T>,
        T: Clone + Send + Sync + 'static,
    {
        let def = step_def(W::definition(), step.index());
        let name = def.signal.map(|s| s.name).unwrap_or_else(|| {
            panic!(
                "step `{}` takes a `Signal<T>` but its definition names no signal",
                def.name
            )
        });
        let signal = SignalName::<W, T>::new(step.index(), name);
        self.backend
            .signals
            .push(Box::new(move |engine: DurableEngine, run_id: RunId| {
                Box::pin(async move { engine.handle::<W>(run_id).signal(signal, payload).await })
                    as BoxFuture<'static, Result<(), WorkflowError>>
            }));
        self
    }

    /// The durable engine the run will use.
    pub fn engine(&self) -> &DurableEngine {
        &self.backend.engine
    }

    /// Runs the workflow on `input` under a fresh run id, to its end or its crash point.
    ///
    /// With [`crash_after`](Harness::crash_after), the run stops right after that step is
    /// committed and fails with [`WorkflowError::Interrupted`](workflow_core::WorkflowError);
    /// [`TestRun::resume_fresh`] then resumes it on a new engine over the same file.
    pub async fn run(self, input: W::Input) -> TestRun<W>
    where
        W: Sync + 'static,
    {
        let plan = Arc::new(self.plan(true));
        let resume_plan = Arc::new(self.plan(false));
        let options = self.options(plan);
        let Sqlite {
            engine,
            path,
            temp,
            signals,
        } = self.backend;
        let workflow = Arc::new(self.workflow);
        let run_id = RunId::generate();
        // The run is stored and its signals delivered before it executes, so a signal is
        // there before its step waits (with paused time, a wait's deadline passes in a blink).
        let created = engine
            .create(&*workflow, input, options.clone().run_id(run_id.clone()))
            .await;
        if let Err(error) = created {
            panic!("workflow-testkit: could not store run {run_id}: {error}");
        }
        if let Err(error) = deliver_signals::<W>(&engine, &run_id, signals).await {
            panic!("workflow-testkit: could not deliver a signal to run {run_id}: {error}");
        }
        let finished = engine
            .execute(&*workflow, run_id.clone(), None, options)
            .await;
        let durable = DurableRun {
            workflow,
            engine,
            run_id,
            path,
            plan: resume_plan,
            deadline: self.deadline,
            temp,
        };
        TestRun::new(W::definition(), finished, Some(durable))
    }
}

impl<W: Workflow> Harness<W, InMemory> {
    /// Runs the workflow on `input` on an in-memory engine, to its end (or its crash point).
    /// A workflow with signal steps runs on a durable harness ([`Harness::sqlite_temp`]),
    /// which delivers them.
    pub async fn run(self, input: W::Input) -> TestRun<W>
    where
        W: SignalFree + Sync,
    {
        let options = self.options(Arc::new(self.plan(true)));
        let finished = Engine::in_memory()
            .run_with(&self.workflow, input, options)
            .await;
        TestRun::new(W::definition(), finished, None)
    }
}

impl<W: Workflow, B> Harness<W, B> {
    /// Replaces the body of `step` with `mock`, which receives the step's inputs as a tuple
    /// (`|(order,)| async move { .. }`; a signal step's `Signal<T>` comes last) and returns
    /// its output or a [`StepError`]. Retries, timeouts and compensation apply as to the real
    /// body. The input and output types are checked against the step.
    pub fn mock<In, Out, F, Fut>(mut self, step: StepHandle<W, In, Out>, mock: F) -> Self
    where
        W: 'static,
        In: 'static,
        Out: 'static,
        F: Fn(In) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Out, StepError>> + Send + 'static,
    {
        let mock: MockFn<In, Out> = Arc::new(move |input| Box::pin(mock(input)));
        self.edits
            .push(Box::new(move |plan| plan.mock(step, mock.clone())));
        self
    }

    /// Replaces the body of step `child_step` of the child workflow that step `step` runs
    /// (`workflow = Child`), from the parent's harness: the rest of the child runs as written.
    /// Panics if `step` does not run a `C`.
    pub fn mock_child<C, PIn, POut, In, Out, F, Fut>(
        mut self,
        step: StepHandle<W, PIn, POut>,
        child_step: StepHandle<C, In, Out>,
        mock: F,
    ) -> Self
    where
        W: 'static,
        C: Workflow + 'static,
        PIn: 'static,
        POut: 'static,
        In: 'static,
        Out: 'static,
        F: Fn(In) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Out, StepError>> + Send + 'static,
    {
        let def = step_def(W::definition(), step.index());
        let runs = def.child.map(|child| (child.definition)().name);
        if runs != Some(C::definition().name) {
            panic!(
                "workflow-testkit: `mock_child({}, {})`: step `{}` of `{}` does not run child workflow `{}`{}",
                def.name,
                child_step.name(),
                def.name,
                W::definition().name,
                C::definition().name,
                runs.map_or_else(String::new, |name| format!(" (it runs `{name}`)"))
            );
        }
        let mock: MockFn<In, Out> = Arc::new(move |input| Box::pin(mock(input)));
        self.edits.push(Box::new(move |plan| {
            plan.child(step).mock(child_step, mock.clone())
        }));
        self
    }

    /// Makes `step` return `value` (a clone per attempt) without running its body.
    pub fn mock_value<In, Out>(self, step: StepHandle<W, In, Out>, value: Out) -> Self
    where
        W: 'static,
        In: 'static,
        Out: Clone + Send + Sync + 'static,
    {
        self.mock(step, move |_| std::future::ready(Ok(value.clone())))
    }

    /// Makes the first `n` attempts of `step` fail with a retryable error; later attempts run
    /// its body (or mock). With fewer than `n` retries, the step fails for good.
    pub fn fail_times<In, Out>(self, step: StepHandle<W, In, Out>, n: u32) -> Self
    where
        W: 'static,
        In: 'static,
        Out: 'static,
    {
        self.fault(step, Fault::FailTimes(n))
    }

    /// Makes every attempt of `step` fail with a permanent error: no retry.
    pub fn fail_permanently<In, Out>(self, step: StepHandle<W, In, Out>) -> Self
    where
        W: 'static,
        In: 'static,
        Out: 'static,
    {
        self.fault(step, Fault::FailPermanently)
    }

    /// Makes every attempt of `step` panic (a panicking step is a failed step).
    pub fn panic<In, Out>(self, step: StepHandle<W, In, Out>) -> Self
    where
        W: 'static,
        In: 'static,
        Out: 'static,
    {
        self.fault(step, Fault::Panic)
    }

    /// Makes every attempt of `step` hang until its `timeout`, or forever: give the step a
    /// timeout or the run a [`deadline`](Harness::deadline), and use paused time. A run ends
    /// when nothing is in flight, so a hanging step keeps it open even after its output is
    /// known (the losing branch of an `any` join, say).
    pub fn hang<In, Out>(self, step: StepHandle<W, In, Out>) -> Self
    where
        W: 'static,
        In: 'static,
        Out: 'static,
    {
        self.fault(step, Fault::Hang)
    }

    fn fault<In, Out>(mut self, step: StepHandle<W, In, Out>, fault: Fault) -> Self
    where
        W: 'static,
        In: 'static,
        Out: 'static,
    {
        self.edits
            .push(Box::new(move |plan| plan.fault(step, fault)));
        self
    }

    /// Makes the compensation of saga step `step` fail on every attempt; the run's
    /// [`FailureReport`](workflow_core::FailureReport) lists it. Panics if `step` is not a
    /// saga step.
    pub fn fail_compensation<In, Out>(mut self, step: StepHandle<W, In, Out>) -> Self
    where
        W: 'static,
        In: 'static,
        Out: 'static,
    {
        let def = step_def(W::definition(), step.index());
        if def.compensation.is_none() {
            let sagas: Vec<&str> = W::definition()
                .steps
                .iter()
                .filter(|s| s.compensation.is_some())
                .map(|s| s.name)
                .collect();
            panic!(
                "workflow-testkit: `fail_compensation({})`: step `{}` of `{}` is not a saga step, \
                 so it has no compensation to fail (saga steps: {})",
                def.name,
                def.name,
                W::definition().name,
                if sagas.is_empty() {
                    "none".to_owned()
                } else {
                    sagas.join(", ")
                }
            );
        }
        self.edits
            .push(Box::new(move |plan| plan.fail_compensation(step)));
        self
    }

    /// Stops the run right after `step`'s output is committed, as a crash would: no
    /// compensation, nothing more journaled. The run fails with
    /// [`WorkflowError::Interrupted`](workflow_core::WorkflowError); on a durable harness,
    /// [`TestRun::resume_fresh`] resumes it (without the crash point).
    pub fn crash_after<In, Out>(mut self, step: StepHandle<W, In, Out>) -> Self
    where
        W: 'static,
        In: 'static,
        Out: 'static,
    {
        self.crash = Some(Box::new(move |plan| plan.crash_after(step)));
        self
    }

    /// The whole run must finish within `deadline` of its start (see
    /// [`RunOptions::deadline`]).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    fn plan(&self, with_crash: bool) -> TestPlan {
        let mut plan = TestPlan::default();
        for edit in &self.edits {
            edit(&mut plan);
        }
        if with_crash {
            if let Some(crash) = &self.crash {
                crash(&mut plan);
            }
        }
        plan
    }

    fn options(&self, plan: Arc<TestPlan>) -> RunOptions {
        run_options(plan, self.deadline)
    }
}

pub(crate) fn run_options(plan: Arc<TestPlan>, deadline: Option<Duration>) -> RunOptions {
    let options = RunOptions::new().test_plan(plan);
    match deadline {
        Some(deadline) => options.deadline(deadline),
        None => options,
    }
}

pub(crate) async fn open_engine(path: &Path) -> DurableEngine {
    Engine::sqlite(path).await.unwrap_or_else(|error| {
        panic!(
            "workflow-testkit: cannot open the SQLite store {}: {error}",
            path.display()
        )
    })
}

fn step_def(
    def: &'static Definition,
    index: workflow_core::StepIndex,
) -> &'static workflow_core::StepDef {
    &def.steps[usize::from(index)]
}

/// Sends the queued signals once the run is stored. A run that finished before consuming
/// them simply leaves them unused.
async fn deliver_signals<W: Workflow>(
    engine: &DurableEngine,
    run_id: &RunId,
    signals: Vec<SendSignal>,
) -> Result<(), WorkflowError> {
    if signals.is_empty() {
        return Ok(());
    }
    loop {
        match engine.status(run_id).await {
            Ok(_) => break,
            Err(StoreError::UnknownRun(_)) => tokio::task::yield_now().await,
            Err(error) => {
                return Err(WorkflowError::Store {
                    workflow: W::definition().name,
                    run_id: run_id.clone(),
                    error,
                })
            }
        }
    }
    for send in signals {
        match send(engine.clone(), run_id.clone()).await {
            Ok(())
            | Err(WorkflowError::Store {
                error: StoreError::RunFinished { .. },
                ..
            }) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// The inputs of a step that waits for a signal: a tuple whose last element is `Signal<T>`.
/// Implemented for steps with up to 8 inputs besides the signal.
#[diagnostic::on_unimplemented(
    message = "this step does not wait for a signal: its inputs `{Self}` do not end with a `Signal<T>`",
    label = "not a signal step",
    note = "`Harness::signal` takes the handle of a step with a trailing `name: Signal<T>` parameter"
)]
pub trait SignalStep {
    /// The signal's payload type.
    type Payload;
}

macro_rules! signal_step {
    ($($input:ident),*) => {
        #[diagnostic::do_not_recommend]
        impl<$($input,)* T> SignalStep for ($($input,)* Signal<T>,) {
            type Payload = T;
        }
    };
}

signal_step!();
signal_step!(A);
signal_step!(A, B);
signal_step!(A, B, C);
signal_step!(A, B, C, D);
signal_step!(A, B, C, D, E);
signal_step!(A, B, C, D, E, F);
signal_step!(A, B, C, D, E, F, G);
signal_step!(A, B, C, D, E, F, G, H);
