//! [`StepContext`]: what a step may know about its run.

use std::sync::Arc;

use crate::run_id::RunId;

/// Facts about the run shared by every step of it.
#[derive(Debug)]
pub struct RunInfo {
    /// Workflow name.
    pub workflow: &'static str,
    /// The run.
    pub run_id: RunId,
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

    /// The run this step belongs to.
    pub fn run_id(&self) -> &RunId {
        &self.run.run_id
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

    /// A key that is the same for every attempt of this step (and item) in this run, and
    /// different for every other step or run: pass it to payment APIs and other side effects
    /// so that a retried attempt is not applied twice.
    pub fn idempotency_key(&self) -> String {
        match self.item {
            Some(i) => format!("{}/{}/{}", self.run.run_id, self.step, i),
            None => format!("{}/{}", self.run.run_id, self.step),
        }
    }
}
