//! Child workflows as steps of the graph: `#[step(after = draft, workflow = Summarize)]`.
//!
//! In memory the child runs as a task of its own with the parent's cancel token (a child
//! token of it) and deadline, its events relayed into the parent's as [`RunEvent::Child`] and
//! its history nested in the parent step's record. A completed child stays held until its
//! parent ends, so that the parent's saga can undo it as a unit: its own compensations, in
//! reverse order. On a durable engine the child is a run of its own in the same store (see
//! [`crate::StepContext::run_child`]), undone from its journal.
//!
//! [`RunEvent::Child`]: crate::RunEvent::Child

mod bridge;
mod memory;
mod registry;
mod undo;

use std::any::Any;
use std::sync::Arc;

use futures::future::BoxFuture;

pub(crate) use memory::{run as run_in_memory, Parent};
pub(crate) use registry::Children;
pub use registry::DurableChild;
pub(crate) use undo::ChildUndo;

use crate::context::StepContext;
use crate::definition::StepIndex;
use crate::error::{StepError, WorkflowError};
use crate::history::RunHistory;
use crate::run_id::RunId;
use crate::workflow::{StartInfo, StepFuture, Workflow};

pub use bridge::durable_child;

/// A finished durable child run: its output (boxed) and history.
pub type ChildFinished = (Box<dyn Any + Send>, RunHistory);

/// A workflow a `workflow = Child` step can run: it starts from `C::default()`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "child workflow `{Self}` starts from `{Self}::default()`, so it must implement `Default` (and `Send + Sync + 'static`)",
    label = "this child workflow has no `Default`",
    note = "derive it: `#[derive(Default)]` on the child's type"
)]
pub trait ChildWorkflow: Workflow + Default + Send + Sync + 'static {}

impl<C: Workflow + Default + Send + Sync + 'static> ChildWorkflow for C {}

/// A child workflow a durable engine can run: the child of a durable parent. (Not a
/// `ChildWorkflow` subtrait: rustc would check that bound where the parent's `Durable<P>` impl
/// names it, before any engine runs it, and report a missing `Default` twice.)
#[doc(hidden)]
pub trait DurableChildWorkflow<P>: crate::workflow::Durable<P> + Send + Sync + 'static {
    /// `Self::default()`.
    fn __new() -> Self;
}

impl<C: crate::workflow::Durable<P> + ChildWorkflow, P> DurableChildWorkflow<P> for C {
    fn __new() -> Self {
        C::default()
    }
}

/// The generated start of a `workflow = Child` step: runs a new child of type `C` (from
/// `C::default()`) on `input`, on the parent's engine.
#[doc(hidden)]
pub fn child_step<'a, C>(
    info: &StartInfo<'_>,
    step: StepIndex,
    name: &'static str,
    item: Option<usize>,
    input: C::Input,
) -> StepFuture<'a, C::Output>
where
    C: ChildWorkflow,
    C::Input: 'static,
    C::Output: 'static,
{
    let run = Arc::clone(info.run);
    let attempt = info.attempt;
    // A step inside a loop runs a child of its own per pass: `step#2` from the second on.
    let key = match info.pass {
        0 | 1 => name.to_owned(),
        pass => format!("{name}#{pass}"),
    };
    let events = info.events.cloned();
    let plan = info.plan.and_then(|plan| plan.child_plan(step));
    Box::pin(async move {
        let Some(durable) = run.children.durable_child(step) else {
            let parent = Parent {
                run: &run,
                events: events.map(|log| (log, step)),
                step: name,
                item,
                attempt,
                plan,
            };
            return run_in_memory(parent, C::default(), input)
                .await
                .map_err(child_failed);
        };
        let context = StepContext::new(Arc::clone(&run), name, attempt, item);
        let run_id = RunId::child(run.run_id(), &key, item, attempt);
        let finished = (durable.run)(context, run_id.clone(), Box::new(input), plan).await;
        let (output, history) = finished.map_err(child_failed)?;
        let undo = run.engine.clone().map(|engine| {
            ChildUndo::stored(C::definition(), move || (durable.undo)(engine, run_id))
        });
        run.children.finished(name, item, history, undo);
        output
            .downcast::<C::Output>()
            .map(|output| *output)
            .map_err(|_| StepError::msg("internal error: a child run's output has another type"))
    })
}

/// A child run's error as its parent step's, retried by the step's policy.
fn child_failed(error: WorkflowError) -> StepError {
    StepError::msg(format!("child workflow: {error}"))
}

/// What undoing a child left: its compensation records, or why it could not run.
pub(crate) type Undone = Result<Vec<crate::report::CompensationRecord>, WorkflowError>;

/// A boxed undo of a finished durable child run.
pub(crate) type UndoFuture = BoxFuture<'static, Undone>;
