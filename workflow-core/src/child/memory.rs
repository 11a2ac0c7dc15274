//! An in-memory child run: a task of its own, cancelled when its step is dropped, whose
//! parent waits for it to stop (and undo its saga steps) before compensating itself. While it
//! runs, its mailbox takes the signals sent through its parent's handle.

use std::sync::Arc;

use futures::FutureExt;
use tokio::sync::oneshot;

use super::child_failed;
use crate::child::Children;
use crate::context::{RunInfo, RunLimits};
use crate::definition::StepIndex;
use crate::error::StepError;
use crate::events::EventLog;
use crate::memory::Mailbox;
use crate::options::CancellationToken;
use crate::run_id::RunId;
use crate::scheduler::{drive_held, Held};
use crate::testing::TestPlan;
use crate::workflow::Workflow;

/// Where an in-memory child of step `step` runs, and whose events it relays.
pub(super) struct Parent<'p> {
    pub run: &'p Arc<RunInfo>,
    pub events: Option<Arc<EventLog>>,
    pub step: StepIndex,
    pub name: &'static str,
    pub item: Option<usize>,
    pub attempt: u32,
    /// The test's plan for the child, if any.
    pub plan: Option<Arc<TestPlan>>,
}

/// Runs `C::default()` on `input` as a child of `parent` and returns its output.
pub(super) async fn run<C>(parent: Parent<'_>, input: C::Input) -> Result<C::Output, StepError>
where
    C: Workflow + Default + Send + Sync + 'static,
    C::Input: 'static,
    C::Output: 'static,
{
    let mut options = parent.run.limits.for_child();
    let cancel = options.cancel.clone().unwrap_or_default();
    options = options.cancel_token(cancel.clone());
    options.plan = parent.plan;
    options.events = parent.events.map(|log| {
        Arc::new(EventLog::relayed(
            log,
            parent.step,
            parent.item,
            C::definition(),
        ))
    });
    let run = Arc::new(RunInfo {
        workflow: C::definition().name,
        run_id: RunId::child(&parent.run.run_id, parent.name, parent.item, parent.attempt),
        engine: None,
        limits: RunLimits::of(&options),
        children: Children::default(),
    });
    let (done, ended) = oneshot::channel();
    let mailbox = Arc::new(Mailbox::default());
    parent
        .run
        .children
        .started(parent.step, parent.item, mailbox.clone());
    tokio::spawn(drive_held::<C>(input, run, options, mailbox.clone(), done));
    let mut guard = StopOnDrop {
        cancel,
        ended: Some(ended),
        parent: parent.run,
        mailbox,
    };
    let ended = match guard.ended.as_mut() {
        Some(ended) => Some(ended.await),
        None => None,
    };
    guard.ended = None;
    parent.run.children.ended(&guard.mailbox);
    let Some(Ok(Held {
        result,
        history,
        undo,
    })) = ended
    else {
        return Err(StepError::msg(
            "internal error: a child run's task ended early",
        ));
    };
    let undo = result.is_ok().then_some(undo).flatten();
    parent
        .run
        .children
        .finished(parent.step, parent.item, history, undo);
    result.map_err(child_failed)
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
