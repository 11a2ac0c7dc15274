//! [`Children`]: what a run knows of the child workflows its steps ran.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use super::{ChildFinished, ChildUndo, UndoFuture};
use crate::context::StepContext;
use crate::definition::StepIndex;
use crate::durable::DurableEngine;
use crate::error::WorkflowError;
use crate::history::RunHistory;
use crate::memory::Mailbox;
use crate::run_id::RunId;
use crate::testing::TestPlan;

/// Runs (or resumes) child run `RunId` of the step behind the context, on its boxed input,
/// with the test's plan for it, if any.
pub type RunChild = fn(
    StepContext,
    RunId,
    Box<dyn std::any::Any + Send>,
    Option<Arc<TestPlan>>,
) -> BoxFuture<'static, Result<ChildFinished, WorkflowError>>;

/// Sends a child run a signal: the payload (a `T`) for its step's `Signal<T>`.
pub type SignalChild = fn(
    DurableEngine,
    RunId,
    StepIndex,
    Box<dyn std::any::Any + Send + Sync>,
) -> BoxFuture<'static, Result<(), WorkflowError>>;

/// How a durable engine runs, undoes and signals the child of one step: the parent's
/// `Durable` impl hands these out (a child is durable when its parent is).
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct DurableChild {
    /// Runs (or resumes) the child run.
    pub run: RunChild,
    /// Undoes a completed child run: its compensations, latest first.
    pub undo: fn(DurableEngine, RunId) -> UndoFuture,
    /// Sends the child run a signal.
    pub signal: SignalChild,
}

/// The children of one run: the durable engine's table of them, the undo of each completed
/// one until the scheduler takes it, their histories, and the in-memory children whose step
/// was dropped, still stopping.
#[derive(Default)]
pub(crate) struct Children {
    durable: Option<fn(StepIndex) -> Option<DurableChild>>,
    state: Mutex<State>,
    /// Set when the run stops early: a child whose step is dropped then is cancelled.
    stopping: AtomicBool,
    /// Set once a child's undo was kept: until then no step completion locks `state`.
    any_undo: AtomicBool,
    /// Set once a child finished: until then no history asks `state`.
    any_child: AtomicBool,
}

#[derive(Default)]
struct State {
    /// The mailboxes of the in-memory children running now.
    running: Vec<(&'static str, Option<usize>, Arc<Mailbox>)>,
    undos: Vec<(&'static str, Option<usize>, ChildUndo)>,
    histories: Vec<(&'static str, RunHistory)>,
    stopping: Vec<BoxFuture<'static, ()>>,
}

impl Children {
    /// The children of a durable run of a workflow whose `Durable` impl hands out `table`.
    pub(crate) fn durable(table: fn(StepIndex) -> Option<DurableChild>) -> Self {
        Children {
            durable: Some(table),
            ..Children::default()
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How the durable engine runs the child of `step`; `None` in memory.
    pub(crate) fn durable_child(&self, step: StepIndex) -> Option<DurableChild> {
        self.durable.and_then(|table| table(step))
    }

    /// An in-memory child of `step` (item `item`) runs and takes signals at `mailbox`.
    pub(crate) fn started(&self, step: &'static str, item: Option<usize>, mailbox: Arc<Mailbox>) {
        self.state().running.push((step, item, mailbox));
    }

    /// The in-memory child behind `mailbox` ended.
    pub(crate) fn ended(&self, mailbox: &Arc<Mailbox>) {
        self.state()
            .running
            .retain(|(_, _, running)| !Arc::ptr_eq(running, mailbox));
    }

    /// The mailbox of the in-memory child of `step` (item `item`) running now.
    pub(crate) fn mailbox(&self, step: &str, item: Option<usize>) -> Option<Arc<Mailbox>> {
        let state = self.state();
        state
            .running
            .iter()
            .rev()
            .find(|(s, i, _)| *s == step && *i == item)
            .map(|(_, _, mailbox)| mailbox.clone())
    }

    /// A child of `step` (item `item`) finished: keeps its history, and its undo (if it
    /// completed) for the scheduler.
    pub(crate) fn finished(
        &self,
        step: &'static str,
        item: Option<usize>,
        history: RunHistory,
        undo: Option<ChildUndo>,
    ) {
        let mut state = self.state();
        self.any_child.store(true, Ordering::SeqCst);
        state.histories.push((step, history));
        if let Some(undo) = undo {
            state.undos.push((step, item, undo));
            self.any_undo.store(true, Ordering::SeqCst);
        }
    }

    /// The undo of the completed child of `step` (item `item`), once.
    pub(crate) fn take_undo(&self, step: &str, item: Option<usize>) -> Option<ChildUndo> {
        if !self.any_undo.load(Ordering::SeqCst) {
            return None;
        }
        let mut state = self.state();
        let at = state
            .undos
            .iter()
            .position(|(s, i, _)| *s == step && *i == item)?;
        Some(state.undos.remove(at).2)
    }

    /// True once any child of the run left an undo (until then no completion has one).
    /// Inline: every chain edge asks, from code generated for each workflow.
    #[inline]
    pub(crate) fn any_undo(&self) -> bool {
        self.any_undo.load(Ordering::SeqCst)
    }

    /// True when a completed child of `step` (item `item`) waits to be kept for its undo.
    pub(crate) fn has_undo(&self, step: &str, item: Option<usize>) -> bool {
        self.any_undo()
            && self
                .state()
                .undos
                .iter()
                .any(|(s, i, _)| *s == step && *i == item)
    }

    /// The histories of the children of `step`, in the order they finished.
    pub(crate) fn histories(&self, step: &str) -> Vec<RunHistory> {
        if !self.any_child.load(Ordering::SeqCst) {
            return Vec::new();
        }
        let state = self.state();
        state
            .histories
            .iter()
            .filter(|(s, _)| *s == step)
            .map(|(_, h)| h.clone())
            .collect()
    }

    /// An in-memory child whose step was dropped: it was cancelled and is stopping (and
    /// undoing its own saga steps) until `stopped` resolves.
    pub(crate) fn stopping(&self, stopped: BoxFuture<'static, ()>) {
        self.state().stopping.push(stopped);
    }

    /// True once the run stops early.
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Marks the run as stopping early: children whose steps are dropped from now on are
    /// cancelled.
    pub(crate) fn mark_stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Waits until every in-memory child cancelled with its step has stopped (and undone its
    /// own saga steps).
    pub(crate) async fn settle(&self) {
        let stopping = std::mem::take(&mut self.state().stopping);
        futures::future::join_all(stopping).await;
    }
}
