//! [`StepContext`]: what a step may know about its run.

use std::sync::Arc;
use std::time::SystemTime;

use crate::durable::DurableEngine;
use crate::engine::Finished;
use crate::error::WorkflowError;
use crate::options::{CancellationToken, RunOptions};
use crate::run_id::RunId;
use crate::workflow::Durable;

/// Facts about the run shared by every step of it.
pub struct RunInfo {
    /// Workflow name.
    pub workflow: &'static str,
    /// The run's id, made on first use ([`RunInfo::run_id`]): a run nobody asks about (an
    /// in-memory run without a failure, tracing or events) never formats one.
    pub(crate) id: std::sync::OnceLock<RunId>,
    /// The durable engine running it (`None` in memory): child runs go to the same store.
    pub engine: Option<DurableEngine>,
    /// The run's cancel token and deadline, which reach its child runs.
    pub limits: RunLimits,
    /// The child workflows its steps ran.
    pub(crate) children: crate::child::Children,
    /// The context (W3C `traceparent`) of the run's span, once OpenTelemetry traces it
    /// (feature `otel`): its children's spans continue it.
    pub(crate) trace: std::sync::OnceLock<String>,
}

/// A run's cancel token and deadline (as an instant), handed down to its child runs.
#[derive(Debug, Clone, Default)]
pub struct RunLimits {
    /// Cancelled when the run is.
    pub cancel: Option<CancellationToken>,
    /// When the run's deadline passes (by the wall clock, as stores keep it).
    pub deadline: Option<SystemTime>,
}

impl RunLimits {
    /// The limits of a run started with `options` now (a stored deadline, if the run has one,
    /// is in `options.deadline_at`).
    pub(crate) fn of(options: &RunOptions) -> Self {
        let relative = options.deadline.map(|d| SystemTime::now() + d);
        RunLimits {
            cancel: options.cancel.clone(),
            deadline: match (options.deadline_at, relative) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        }
    }

    /// Options for a child run: cancelled with this run, by the same deadline.
    fn for_child(&self) -> RunOptions {
        let mut options = RunOptions::default();
        if let Some(cancel) = &self.cancel {
            options = options.cancel_token(cancel.child_token());
        }
        if let Some(at) = self.deadline {
            let left = at.duration_since(SystemTime::now()).unwrap_or_default();
            options = options.deadline(left);
            options.deadline_at = Some(at);
        }
        options
    }

    /// True once the run was cancelled or its deadline passed.
    fn stopped(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(CancellationToken::is_cancelled)
            || self.deadline.is_some_and(|at| at <= SystemTime::now())
    }
}

impl RunInfo {
    /// The run's id: the caller's, or a generated one, made the first time it is asked for.
    pub fn run_id(&self) -> &RunId {
        self.id.get_or_init(RunId::generate)
    }

    /// Options for a child run of this run: cancelled with it, by its deadline, its spans
    /// under this run's span.
    pub(crate) fn child_options(&self) -> RunOptions {
        let mut options = self.limits.for_child();
        options.trace_parent = self.trace.get().cloned();
        options
    }
}

impl std::fmt::Debug for RunInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunInfo")
            .field("workflow", &self.workflow)
            .field("run_id", self.run_id())
            .field("durable", &self.engine.is_some())
            .finish()
    }
}

/// Passed to a step that declares a leading `&StepContext` parameter.
///
/// ```
/// use workflow_core::prelude::*;
///
/// struct Mailer;
///
/// #[workflow]
/// impl Mailer {
///     #[step]
///     async fn send(&self, ctx: &StepContext, to: String) -> String {
///         format!("{to} via {}", ctx.idempotency_key())
///     }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct StepContext {
    run: Arc<RunInfo>,
    step: &'static str,
    attempt: u32,
    item: Option<usize>,
}

impl StepContext {
    #[doc(hidden)]
    pub fn new(run: Arc<RunInfo>, step: &'static str, attempt: u32, item: Option<usize>) -> Self {
        StepContext {
            run,
            step,
            attempt,
            item,
        }
    }

    /// The durable engine running this step's run (`None` in memory).
    pub(crate) fn engine(&self) -> Option<DurableEngine> {
        self.run.engine.clone()
    }

    /// The run this step belongs to.
    pub fn run_id(&self) -> &RunId {
        self.run.run_id()
    }

    /// The workflow's name.
    pub fn workflow(&self) -> &'static str {
        self.run.workflow
    }

    /// The step's name.
    pub fn step(&self) -> &'static str {
        self.step
    }

    /// The attempt number, starting at 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// For a `for_each` step: the index of the item this invocation handles.
    pub fn item(&self) -> Option<usize> {
        self.item
    }

    /// Runs `child` as a child workflow of this step and returns its output: for a child chosen
    /// at run time (a step of the graph runs a fixed one: `#[step(workflow = Child)]`), with the
    /// same semantics.
    ///
    /// On a durable engine the child is a run of its own in the same store, with the
    /// deterministic id `~{parent run}/{step}[/{item}]`, then `@{attempt}` from the step's
    /// second attempt on (in a namespace of its own: no caller-chosen id starts with `~`). If
    /// the parent crashes and this step runs again, the child is resumed (or its stored result
    /// returned), never started twice; a retry of the step starts a new child. The parent's
    /// cancel and what is left of its deadline reach the child; a child whose parent stopped
    /// (cancelled, out of time, or another step failed) is cancelled, and its completed saga
    /// steps compensated. When the parent's saga compensates after this step completed, the
    /// child is undone as a unit: its own compensations, latest first (in memory, and on a
    /// durable engine unless the parent restarted in between). Its input and output types are
    /// checked by rustc. In memory the child is a task of its own, which the parent waits for
    /// when it stops; its history is nested in the step's record.
    ///
    /// ```
    /// use workflow_core::prelude::*;
    ///
    /// #[derive(Clone)]
    /// struct Double;
    /// #[workflow]
    /// impl Double {
    ///     #[step]
    ///     async fn double(&self, x: u32) -> u32 { x * 2 }
    /// }
    ///
    /// struct Parent;
    /// #[workflow]
    /// impl Parent {
    ///     #[step]
    ///     async fn call(&self, ctx: &StepContext, x: u32) -> Result<u32, WorkflowError> {
    ///         ctx.run_child(&Double, x + 1).await
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// assert_eq!(Engine::in_memory().run(&Parent, 20).await.unwrap(), 42);
    /// # }
    /// ```
    pub async fn run_child<C>(&self, child: &C, input: C::Input) -> Result<C::Output, WorkflowError>
    where
        C: Durable + Clone + Send + Sync + 'static,
        C::Input: 'static,
        C::Output: 'static,
    {
        let Some(engine) = &self.run.engine else {
            let parent = crate::child::Parent {
                run: &self.run,
                events: None,
                step: self.step,
                item: self.item,
                attempt: self.attempt,
                plan: None,
            };
            return crate::child::run_in_memory(parent, child.clone(), input).await;
        };
        let id = RunId::child(self.run.run_id(), self.step, self.item, self.attempt);
        let finished = self
            .run_child_as(engine, child, id.clone(), input, None)
            .await;
        let undo = finished.result.is_ok().then(|| {
            let (engine, child) = (engine.clone(), child.clone());
            crate::child::ChildUndo::stored(C::definition(), move || {
                Box::pin(async move { engine.undo_completed(&child, &id).await })
            })
        });
        self.run
            .children
            .finished(self.step, self.item, finished.history, undo);
        finished.result
    }

    /// Runs (or resumes) `child` as durable child run `id` of this step, with the test's
    /// `plan` for it: its result and history.
    pub(crate) async fn run_child_as<C>(
        &self,
        engine: &DurableEngine,
        child: &C,
        id: RunId,
        input: C::Input,
        plan: Option<Arc<crate::testing::TestPlan>>,
    ) -> Finished<C::Output>
    where
        C: Durable + Clone + Send + Sync + 'static,
        C::Input: 'static,
    {
        let mut options = self.run.child_options();
        options.plan = plan;
        // The worker knows the child's definition, so a child left behind (its parent
        // cancelled, or crashed while parked) is taken up and finished or compensated.
        if let Err(error) = engine.register(child).await {
            return Finished {
                result: Err(WorkflowError::Store {
                    workflow: C::definition().name,
                    run_id: self.run.run_id().clone(),
                    error,
                }),
                history: crate::history::RunHistory::empty(C::definition()),
            };
        }
        let mut guard = CancelChildOnDrop {
            engine,
            run_id: id.clone(),
            run: &self.run,
            armed: true,
        };
        let finished = engine.execute_as(child, id, Some(input), options).await;
        guard.armed = false;
        finished
    }

    /// A key that is the same for every attempt of this step (and item) in this run, and
    /// different for every other step or run: pass it to payment APIs and other side effects
    /// so that a retried attempt is not applied twice.
    pub fn idempotency_key(&self) -> String {
        match self.item {
            Some(i) => format!("{}/{}/{}", self.run.run_id(), self.step, i),
            None => format!("{}/{}", self.run.run_id(), self.step),
        }
    }
}

/// Dropped with the parent step's future: if the parent stopped (it was cancelled, ran out of
/// time, or another step failed), the child run is cancelled in the store too (its owner
/// compensates it), instead of being taken up again later as an orphan. A drop for any other
/// reason (a lost lease) leaves the child to resume with its parent.
struct CancelChildOnDrop<'a> {
    engine: &'a DurableEngine,
    run_id: RunId,
    run: &'a RunInfo,
    armed: bool,
}

impl Drop for CancelChildOnDrop<'_> {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.armed && (self.run.limits.stopped() || self.run.children.is_stopping()) {
            let (engine, run_id) = (self.engine.clone(), self.run_id.clone());
            runtime.spawn(async move {
                if let Err(error) = engine.cancel(&run_id).await {
                    tracing::warn!(%run_id, %error, "cannot cancel the child of a stopped run");
                }
            });
        }
    }
}
