//! An in-memory child run: a task of its own, cancelled when its step is dropped, whose
//! parent waits for it to stop (and undo its saga steps) before compensating itself. While it
//! runs, its mailbox takes the signals sent through its parent's handle.

use std::sync::Arc;

use futures::FutureExt;
use tokio::sync::oneshot;

use crate::child::Children;
use crate::context::{RunInfo, RunLimits};
use crate::definition::StepIndex;
use crate::error::WorkflowError;
use crate::events::EventLog;
use crate::memory::Mailbox;
use crate::options::CancellationToken;
use crate::run_id::RunId;
use crate::scheduler::{drive_held, Held};
use crate::testing::TestPlan;
use crate::workflow::Workflow;

/// The parent step a child runs for.
pub(crate) struct Parent<'p> {
    pub run: &'p Arc<RunInfo>,
    /// The parent's event log and the step's index there, if anyone listens.
    pub events: Option<(Arc<EventLog>, StepIndex)>,
    pub step: &'static str,
    pub item: Option<usize>,
    pub attempt: u32,
    /// The test's plan for the child, if any.
    pub plan: Option<Arc<TestPlan>>,
}

/// Runs `child` on `input` as a child of `parent` and returns its output.
pub(crate) async fn run<C>(
    parent: Parent<'_>,
    child: C,
    input: C::Input,
) -> Result<C::Output, WorkflowError>
where
    C: Workflow + Send + Sync + 'static,
    C::Input: 'static,
    C::Output: 'static,
{
    let mut options = parent.run.child_options();
    let cancel = options.cancel.clone().unwrap_or_default();
    options = options.cancel_token(cancel.clone());
    options.plan = parent.plan;
    options.events = parent
        .events
        .map(|(log, step)| Arc::new(EventLog::relayed(log, step, parent.item, C::definition())));
    let run_id = RunId::child(
        parent.run.run_id(),
        parent.step,
        parent.item,
        parent.attempt,
    );
    let run = Arc::new(RunInfo {
        workflow: C::definition().name,
        id: run_id.clone().into(),
        engine: None,
        limits: RunLimits::of(&options),
        children: Children::default(),
        trace: Default::default(),
    });
    let (done, ended) = oneshot::channel();
    let mailbox = Arc::new(Mailbox::default());
    let children = &parent.run.children;
    children.started(parent.step, parent.item, mailbox.clone());
    tokio::spawn(drive_held(
        child,
        input,
        run,
        options,
        mailbox.clone(),
        done,
    ));
    let mut guard = StopOnDrop {
        cancel,
        ended: Some(ended),
        parent: parent.run,
        mailbox,
    };
    let ended = match guard.ended.as_mut() {
        Some(ended) => ended.await.ok(),
        None => None,
    };
    guard.ended = None;
    children.ended(&guard.mailbox);
    let Some(Held {
        result,
        history,
        undo,
    }) = ended
    else {
        return Err(WorkflowError::Interrupted {
            workflow: C::definition().name,
            run_id,
            step: "",
        });
    };
    let undo = result.is_ok().then_some(undo).flatten();
    children.finished(parent.step, parent.item, history, undo);
    result
}

/// Dropped with the step's future before the child ended: cancels the child, and leaves its
/// stopping to the parent, which waits for it before compensating.
struct StopOnDrop<'p, O: Send + 'static> {
    cancel: CancellationToken,
    ended: Option<oneshot::Receiver<Held<O>>>,
    parent: &'p Arc<RunInfo>,
    /// Where the child takes its signals (from its parent's handle).
    mailbox: Arc<Mailbox>,
}

impl<O: Send + 'static> Drop for StopOnDrop<'_, O> {
    fn drop(&mut self) {
        if let Some(ended) = self.ended.take() {
            self.parent.children.ended(&self.mailbox);
            self.cancel.cancel();
            self.parent.children.stopping(ended.map(|_| ()).boxed());
        }
    }
}
