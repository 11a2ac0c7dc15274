//! Errors of steps ([`StepError`]) and of runs ([`WorkflowError`]).

use std::fmt;

use crate::report::FailureReport;
use crate::run_id::RunId;
use crate::store::StoreError;

type SharedError = std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>;

/// The error of one step attempt.
///
/// Every `E: std::error::Error + Send + Sync + 'static` converts into it with `?`, so a step may
/// return `Result<T, E>` for its own error type. Like `anyhow::Error`, it does not implement
/// `std::error::Error` itself (that would collide with the blanket conversion); use
/// [`StepError::source_error`] to reach the original error.
#[derive(Clone)]
pub struct StepError {
    pub(crate) kind: StepErrorKind,
    pub(crate) permanent: bool,
}

#[derive(Clone)]
pub(crate) enum StepErrorKind {
    Error(SharedError),
    #[cfg(feature = "anyhow")]
    Anyhow(std::sync::Arc<anyhow::Error>),
    Message(String),
    Panic(String),
    TimedOut(std::time::Duration),
}

impl StepError {
    /// An error from a message.
    pub fn msg(message: impl Into<String>) -> Self {
        StepError {
            kind: StepErrorKind::Message(message.into()),
            permanent: false,
        }
    }

    /// A permanent error: the step is not retried, whatever its `retry` policy.
    pub fn permanent(error: impl Into<StepError>) -> Self {
        StepError {
            permanent: true,
            ..error.into()
        }
    }

    /// The error of a step attempt that panicked, with the panic message.
    pub fn panicked(message: impl Into<String>) -> Self {
        StepError {
            kind: StepErrorKind::Panic(message.into()),
            permanent: false,
        }
    }

    /// The error of a step attempt that ran past its `timeout`.
    pub fn timed_out(after: std::time::Duration) -> Self {
        StepError {
            kind: StepErrorKind::TimedOut(after),
            permanent: false,
        }
    }

    /// A boxed error, keeping its concrete type for [`StepError::downcast_ref`]. A step
    /// returning `Result<T, Box<dyn Error + Send + Sync>>` is converted with it.
    pub fn from_boxed(error: Box<dyn std::error::Error + Send + Sync + 'static>) -> Self {
        StepError {
            kind: StepErrorKind::Error(std::sync::Arc::from(error)),
            permanent: false,
        }
    }

    /// With the `anyhow` feature: an `anyhow::Error`, keeping its chain and its original
    /// error for [`StepError::downcast_ref`]. A step returning `anyhow::Result<T>` (or
    /// `Result<T, anyhow::Error>`) is converted with it.
    #[cfg(feature = "anyhow")]
    pub fn from_anyhow(error: anyhow::Error) -> Self {
        StepError {
            kind: StepErrorKind::Anyhow(std::sync::Arc::new(error)),
            permanent: false,
        }
    }

    /// True when the attempt panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.kind, StepErrorKind::Panic(_))
    }

    /// True when the attempt ran past its timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, StepErrorKind::TimedOut(_))
    }

    /// True when the error stops retries at once.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    /// The original error, when the step returned one.
    pub fn source_error(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match &self.kind {
            StepErrorKind::Error(e) => Some(e.as_ref()),
            #[cfg(feature = "anyhow")]
            StepErrorKind::Anyhow(e) => Some(e.as_ref().as_ref()),
            _ => None,
        }
    }

    /// Downcasts the original error to a concrete type (also through an `anyhow::Error` or a
    /// `Box<dyn Error>` the step returned).
    pub fn downcast_ref<E: std::error::Error + Send + Sync + 'static>(&self) -> Option<&E> {
        match &self.kind {
            #[cfg(feature = "anyhow")]
            StepErrorKind::Anyhow(e) => e.downcast_ref::<E>(),
            _ => self.source_error().and_then(|e| e.downcast_ref::<E>()),
        }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for StepError {
    fn from(error: E) -> Self {
        StepError {
            kind: StepErrorKind::Error(std::sync::Arc::new(error)),
            permanent: false,
        }
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            StepErrorKind::Error(e) => write!(f, "{e}")?,
            #[cfg(feature = "anyhow")]
            StepErrorKind::Anyhow(e) => write!(f, "{e:#}")?,
            StepErrorKind::Message(m) => f.write_str(m)?,
            StepErrorKind::Panic(m) => write!(f, "panicked: {m}")?,
            StepErrorKind::TimedOut(d) => write!(f, "timed out after {d:?}")?,
        }
        if self.permanent {
            f.write_str(" (permanent)")?;
        }
        Ok(())
    }
}

impl fmt::Debug for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StepError({self})")
    }
}

/// Why a run did not produce its output.
///
/// Every variant names the workflow and the run; step failures name the step. Variants that
/// stop a run early carry a [`FailureReport`]: what was cancelled and how every completed saga
/// step was compensated. `Display` gives all of it on one line, for logs.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// A step failed for good (after its retries).
    #[error("workflow `{workflow}` run {run_id}: step `{step}`{} failed after {attempts} attempt(s): {error}{report}", item_suffix(.item))]
    StepFailed {
        /// Workflow name.
        workflow: &'static str,
        /// The run.
        run_id: RunId,
        /// The failed step.
        step: &'static str,
        /// For a `for_each` step: the index of the failed item.
        item: Option<usize>,
        /// Attempts made, the last one included.
        attempts: u32,
        /// The last attempt's error.
        error: StepError,
        /// Cancelled steps and compensations.
        report: Box<FailureReport>,
    },
    /// A loop's back edge fired once more than `max_passes` allows.
    #[error("workflow `{workflow}` run {run_id}: loop at step `{step}` would start pass {} of at most max_passes = {max_passes}{report}", max_passes + 1)]
    LoopLimitExceeded {
        /// Workflow name.
        workflow: &'static str,
        /// The run.
        run_id: RunId,
        /// The loop's head step.
        step: &'static str,
        /// The declared bound.
        max_passes: u32,
        /// Cancelled steps and compensations.
        report: Box<FailureReport>,
    },
    /// The run was cancelled from outside (see [`crate::RunOptions::cancel_token`]).
    #[error("workflow `{workflow}` run {run_id}: cancelled{report}")]
    Cancelled {
        /// Workflow name.
        workflow: &'static str,
        /// The run.
        run_id: RunId,
        /// Cancelled steps and compensations.
        report: Box<FailureReport>,
    },
    /// The run did not finish within its deadline (see [`crate::RunOptions::deadline`]).
    #[error("workflow `{workflow}` run {run_id}: deadline of {deadline:?} exceeded{report}")]
    DeadlineExceeded {
        /// Workflow name.
        workflow: &'static str,
        /// The run.
        run_id: RunId,
        /// The run's deadline, measured from its start.
        deadline: std::time::Duration,
        /// Cancelled steps and compensations.
        report: Box<FailureReport>,
    },
    /// The run had stopped (its cause journaled) before a restart; the restart finished its
    /// compensation.
    #[error("workflow `{workflow}` run {run_id}: {cause} (stopped before a restart){report}")]
    Stopped {
        /// Workflow name.
        workflow: &'static str,
        /// The run.
        run_id: RunId,
        /// The journaled cause.
        cause: String,
        /// Cancelled steps and compensations.
        report: Box<FailureReport>,
    },
    /// The store failed, or holds a corrupt record: the run was left as it is in the store.
    #[error("workflow `{workflow}` run {run_id}: {error}")]
    Store {
        /// Workflow name.
        workflow: &'static str,
        /// The run.
        run_id: RunId,
        /// What the store said.
        error: StoreError,
    },
    /// The run was started by another definition of the workflow; it was left untouched.
    #[error("workflow `{workflow}` run {run_id} was started by version {stored_version} (definition hash {stored_hash:016x}), but this program has version {current_version} (definition hash {current_hash:016x}){}; the run was left untouched", changes_suffix(.changes))]
    VersionMismatch {
        /// Workflow name.
        workflow: &'static str,
        /// The run.
        run_id: RunId,
        /// Version the run started with.
        stored_version: u32,
        /// Definition hash the run started with.
        stored_hash: u64,
        /// Version of this program's definition.
        current_version: u32,
        /// Definition hash of this program's definition.
        current_hash: u64,
        /// What differs, one line per step (e.g. "step `ship`: returns `u32` -> `String`"),
        /// when the store has the run's definition; empty otherwise.
        changes: Vec<String>,
    },
    /// A test stopped the run right after `step`, as a crash would (see `workflow-testkit`).
    #[error(
        "workflow `{workflow}` run {run_id}: interrupted after step `{step}` (simulated crash)"
    )]
    Interrupted {
        /// Workflow name.
        workflow: &'static str,
        /// The run.
        run_id: RunId,
        /// The step after which the run stopped.
        step: &'static str,
    },
    /// The run had already finished without an output; `error` is its stored error.
    #[error("workflow `{workflow}` run {run_id}: already finished ({status}): {error}")]
    FinishedEarlier {
        /// Workflow name.
        workflow: &'static str,
        /// The run.
        run_id: RunId,
        /// `failed` or `cancelled`.
        status: &'static str,
        /// The stored error, without the workflow and run prefix.
        error: String,
    },
    /// A run with this id exists with another input: the id is an idempotency key, so the
    /// stored run was left as it is. Start the new input under a new id.
    #[error("workflow `{workflow}` run {run_id} already exists with another input; a run id is an idempotency key: use a new id for a new input")]
    InputConflict {
        /// Workflow name.
        workflow: &'static str,
        /// The run.
        run_id: RunId,
    },
    /// A caller-chosen run id in the namespace of child runs (it starts with
    /// [`RunId::CHILD_PREFIX`]): refused, so no run can take the place of another run's child.
    #[error(
        "workflow `{workflow}` run id {run_id} starts with `~`, which is reserved for child runs"
    )]
    ReservedRunId {
        /// Workflow name.
        workflow: &'static str,
        /// The refused id.
        run_id: RunId,
    },
    /// The run id belongs to another workflow.
    #[error("run {run_id} belongs to workflow `{found}`, not `{workflow}`")]
    WrongWorkflow {
        /// The workflow asked for.
        workflow: &'static str,
        /// The run.
        run_id: RunId,
        /// The workflow the run belongs to.
        found: String,
    },
    /// A signal for the child workflow of step `step` ([`crate::RunHandle::signal_child`]),
    /// which runs no child of that workflow now (not started yet, finished, or another type).
    #[error(
        "workflow `{workflow}` run {run_id}: step `{step}` runs no child `{child}` to signal now"
    )]
    NoChildRun {
        /// The parent's workflow.
        workflow: &'static str,
        /// The parent run.
        run_id: RunId,
        /// The parent's step.
        step: &'static str,
        /// The child workflow the signal is for.
        child: &'static str,
    },
    /// A signal name the workflow does not wait for (sent through the untyped entry point;
    /// typed signal handles make this a compile error).
    #[error("workflow `{workflow}` run {run_id}: no step waits for a signal `{signal}` (its signals: {})", known.join(", "))]
    UnknownSignal {
        /// Workflow name.
        workflow: &'static str,
        /// The run.
        run_id: RunId,
        /// The name sent.
        signal: String,
        /// The signals the workflow waits for.
        known: Vec<&'static str>,
    },
    /// A signal payload that does not decode as the signal's type: refused when sent, so the
    /// run is not affected and a correct signal can follow.
    #[error(
        "workflow `{workflow}` run {run_id}: the payload of signal `{signal}` is refused: {reason}"
    )]
    BadSignal {
        /// Workflow name.
        workflow: &'static str,
        /// The run.
        run_id: RunId,
        /// The signal.
        signal: &'static str,
        /// Why it does not decode.
        reason: String,
    },
    /// The output of an in-memory run was already returned to another `wait` (an output is
    /// moved out, not cloned).
    #[error("workflow `{workflow}` run {run_id}: its output was already returned to another wait")]
    OutputTaken {
        /// Workflow name.
        workflow: &'static str,
        /// The run.
        run_id: RunId,
    },
    /// The run finished, but the step that produces the output never ran (its branch was not taken).
    #[error("workflow `{workflow}` run {run_id}: finished without output: none of the output steps ({}) ran", steps.join(", "))]
    NoOutput {
        /// Workflow name.
        workflow: &'static str,
        /// The run.
        run_id: RunId,
        /// The steps that could have produced the output.
        steps: Vec<&'static str>,
    },
}

fn item_suffix(item: &Option<usize>) -> String {
    item.map(|i| format!(" (item {i})")).unwrap_or_default()
}

impl WorkflowError {
    /// The run this error belongs to.
    pub fn run_id(&self) -> &RunId {
        match self {
            WorkflowError::StepFailed { run_id, .. }
            | WorkflowError::LoopLimitExceeded { run_id, .. }
            | WorkflowError::Cancelled { run_id, .. }
            | WorkflowError::DeadlineExceeded { run_id, .. }
            | WorkflowError::Stopped { run_id, .. }
            | WorkflowError::Store { run_id, .. }
            | WorkflowError::VersionMismatch { run_id, .. }
            | WorkflowError::WrongWorkflow { run_id, .. }
            | WorkflowError::NoChildRun { run_id, .. }
            | WorkflowError::InputConflict { run_id, .. }
            | WorkflowError::ReservedRunId { run_id, .. }
            | WorkflowError::UnknownSignal { run_id, .. }
            | WorkflowError::BadSignal { run_id, .. }
            | WorkflowError::OutputTaken { run_id, .. }
            | WorkflowError::FinishedEarlier { run_id, .. }
            | WorkflowError::Interrupted { run_id, .. }
            | WorkflowError::NoOutput { run_id, .. } => run_id,
        }
    }

    /// The step the error is about, if any.
    pub fn step(&self) -> Option<&'static str> {
        match self {
            WorkflowError::StepFailed { step, .. }
            | WorkflowError::LoopLimitExceeded { step, .. } => Some(step),
            _ => None,
        }
    }

    /// What happened after the run stopped: cancelled steps and compensations.
    pub fn report(&self) -> Option<&FailureReport> {
        match self {
            WorkflowError::StepFailed { report, .. }
            | WorkflowError::LoopLimitExceeded { report, .. }
            | WorkflowError::Cancelled { report, .. }
            | WorkflowError::DeadlineExceeded { report, .. }
            | WorkflowError::Stopped { report, .. } => Some(report),
            _ => None,
        }
    }

    /// The message without its "workflow `X` run Y: " prefix: what is stored and journaled.
    pub(crate) fn cause(&self) -> String {
        let text = self.to_string();
        let prefix = format!("workflow `{}` run {}: ", self.workflow(), self.run_id());
        text.strip_prefix(&prefix)
            .map_or_else(|| text.clone(), str::to_owned)
    }

    /// The workflow this error belongs to.
    pub fn workflow(&self) -> &'static str {
        match self {
            WorkflowError::StepFailed { workflow, .. }
            | WorkflowError::LoopLimitExceeded { workflow, .. }
            | WorkflowError::Cancelled { workflow, .. }
            | WorkflowError::DeadlineExceeded { workflow, .. }
            | WorkflowError::Stopped { workflow, .. }
            | WorkflowError::Store { workflow, .. }
            | WorkflowError::VersionMismatch { workflow, .. }
            | WorkflowError::WrongWorkflow { workflow, .. }
            | WorkflowError::NoChildRun { workflow, .. }
            | WorkflowError::InputConflict { workflow, .. }
            | WorkflowError::ReservedRunId { workflow, .. }
            | WorkflowError::UnknownSignal { workflow, .. }
            | WorkflowError::BadSignal { workflow, .. }
            | WorkflowError::OutputTaken { workflow, .. }
            | WorkflowError::FinishedEarlier { workflow, .. }
            | WorkflowError::Interrupted { workflow, .. }
            | WorkflowError::NoOutput { workflow, .. } => workflow,
        }
    }

    /// The same error with `report` attached (variants without a report are unchanged).
    pub(crate) fn with_report(mut self, new: FailureReport) -> Self {
        match &mut self {
            WorkflowError::StepFailed { report, .. }
            | WorkflowError::LoopLimitExceeded { report, .. }
            | WorkflowError::Cancelled { report, .. }
            | WorkflowError::DeadlineExceeded { report, .. }
            | WorkflowError::Stopped { report, .. } => **report = new,
            _ => {}
        }
        self
    }
}

/// `; changed: a; b` (nothing when no change is known).
fn changes_suffix(changes: &[String]) -> String {
    if changes.is_empty() {
        String::new()
    } else {
        format!("; changed: {}", changes.join("; "))
    }
}
