//! [`RunOptions`]: per-run settings.

use std::sync::Arc;
use std::time::Duration;

use crate::run_id::RunId;
use crate::testing::TestPlan;

pub use tokio_util::sync::CancellationToken;

/// Settings of one run, for [`crate::Engine::run_with`].
///
/// ```
/// use std::time::Duration;
/// use workflow_core::{CancellationToken, RunOptions};
///
/// let token = CancellationToken::new();
/// let options = RunOptions::new().deadline(Duration::from_secs(30)).cancel_token(token.clone());
/// // elsewhere: token.cancel();
/// ```
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub(crate) deadline: Option<Duration>,
    pub(crate) cancel: Option<CancellationToken>,
    pub(crate) plan: Option<Arc<TestPlan>>,
    /// Cancelled when the worker lost the run's lease: stop at once, write nothing more.
    pub(crate) fence: Option<CancellationToken>,
    pub(crate) queue: Option<String>,
    pub(crate) run_id: Option<RunId>,
    /// Where the run's events go (runs started with a handle).
    pub(crate) events: Option<Arc<crate::events::EventLog>>,
    /// The deadline as an instant of the wall clock, when it is fixed already (a stored run's,
    /// or a parent's for its child): exact, where `deadline` is measured from now.
    pub(crate) deadline_at: Option<std::time::SystemTime>,
    /// The trace context (W3C `traceparent`) the run's span continues (feature `otel`): a
    /// stored run's, or a parent's for its child.
    pub(crate) trace_parent: Option<String>,
    /// Per-step overrides of the definition's tunables, by step name.
    pub(crate) overrides: Vec<(&'static str, Override)>,
}

/// A step of a workflow, named through the workflow's generated step enum
/// (`ExpenseStep::Charge`), for [`RunOptions::retry`] and its siblings.
pub trait StepName: Copy {
    /// The step's stable name.
    fn step_name(&self) -> &'static str;
}

/// One per-run override of a step's tunable.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Override {
    Retry(u32),
    Timeout(Duration),
    Concurrency(u32),
}

impl RunOptions {
    /// Default options: no deadline, not cancellable from outside.
    pub fn new() -> Self {
        RunOptions::default()
    }

    /// The default options, shared: a run's future holds a pointer to them, not a copy.
    pub(crate) fn none() -> &'static RunOptions {
        static NONE: RunOptions = RunOptions {
            deadline: None,
            cancel: None,
            plan: None,
            fence: None,
            queue: None,
            run_id: None,
            events: None,
            deadline_at: None,
            trace_parent: None,
            overrides: Vec::new(),
        };
        &NONE
    }

    /// The whole run must finish within `deadline` of its start; past it, in-flight steps are
    /// dropped, completed saga steps are compensated, and the run fails with
    /// [`crate::WorkflowError::DeadlineExceeded`].
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Cancelling `token` stops the run: in-flight steps are dropped, completed saga steps are
    /// compensated, and the run fails with [`crate::WorkflowError::Cancelled`].
    pub fn cancel_token(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// On a durable engine: start the run on the named queue, whose limits
    /// ([`crate::store::QueueConfig`]) hold across all workers. The default queue is `"default"`.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// The run's id, chosen by the caller (default: a fresh one). On a durable engine it is
    /// an idempotency key: starting or running an id that exists continues that run (or
    /// returns its result) instead of starting another. Ids starting with `~` are reserved for
    /// child runs.
    pub fn run_id(mut self, run_id: impl Into<RunId>) -> Self {
        self.run_id = Some(run_id.into());
        self
    }

    /// For this run, `step` is retried up to `retries` times (its `retry = N`; `0`: not
    /// retried), with its own backoff. Only a step declared with `retry` can be overridden:
    /// only its input is kept for another attempt (a warning says when an override is
    /// ignored). Overrides change no definition: they apply where this run is driven with
    /// these options, and a run resumed elsewhere uses the definition's values.
    pub fn retry(mut self, step: impl StepName, retries: u32) -> Self {
        self.overrides
            .push((step.step_name(), Override::Retry(retries)));
        self
    }

    /// For this run, each attempt of `step` must finish within `timeout` (its `timeout = ..`).
    pub fn timeout(mut self, step: impl StepName, timeout: Duration) -> Self {
        self.overrides
            .push((step.step_name(), Override::Timeout(timeout)));
        self
    }

    /// For this run, at most `limit` items of the `for_each` step `step` run at once (its
    /// `concurrency = N`).
    pub fn concurrency(mut self, step: impl StepName, limit: u32) -> Self {
        self.overrides
            .push((step.step_name(), Override::Concurrency(limit.max(1))));
        self
    }

    #[cfg(feature = "testkit")]
    /// Runs with a test plan: mocks, injected faults, a crash point (see `workflow-testkit`).
    pub fn test_plan(mut self, plan: Arc<TestPlan>) -> Self {
        self.plan = Some(plan);
        self
    }
}
