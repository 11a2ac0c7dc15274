//! [`StepContext`]: what a step may know about its run.

use std::sync::Arc;

use crate::durable::DurableEngine;
use crate::engine::Engine;
use crate::error::WorkflowError;
use crate::options::RunOptions;
use crate::run_id::RunId;
use crate::workflow::Durable;

/// Facts about the run shared by every step of it.
pub struct RunInfo {
    /// Workflow name.
    pub workflow: &'static str,
    /// The run.
    pub run_id: RunId,
    /// The durable engine running it (`None` in memory): child runs go to the same store.
    pub engine: Option<DurableEngine>,
}

impl std::fmt::Debug for RunInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunInfo")
            .field("workflow", &self.workflow)
            .field("run_id", &self.run_id)
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

    /// Runs `child` as a child workflow of this step and returns its output.
    ///
    /// On a durable engine the child is a run of its own in the same store, with the
    /// deterministic id `~{parent run}/{step}[/{item}]` (in a namespace of its own: no
    /// caller-chosen id starts with `~`): if the
    /// parent crashes and this step runs again, the child is resumed (or its stored result
    /// returned), never started twice. Its input and output types are checked by rustc. In
    /// memory, the child simply runs to its end.
    ///
    /// ```
    /// use workflow_core::prelude::*;
    ///
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
    pub async fn run_child<C: Durable + Sync>(
        &self,
        child: &C,
        input: C::Input,
    ) -> Result<C::Output, WorkflowError> {
        match &self.run.engine {
            Some(engine) => {
                let id = RunId::child(&self.run.run_id, self.step, self.item);
                engine
                    .execute_as(child, id, Some(input), RunOptions::default())
                    .await
                    .result
            }
            None => Engine::in_memory().run_any(child, input).await,
        }
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
