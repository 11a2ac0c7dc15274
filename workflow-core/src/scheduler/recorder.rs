//! The optional history of a run: timings, the path taken, restored steps and outcomes.

use std::time::{Duration, Instant};

use super::{Driver, Status};
use crate::definition::Definition;
use crate::history::{RunHistory, StepOutcome};
use crate::workflow::Workflow;

/// Timings and the path, collected only when a history was asked for.
pub(crate) struct Recorder {
    started: Instant,
    history: RunHistory,
}

impl Recorder {
    pub fn new(def: &Definition) -> Self {
        Recorder {
            started: Instant::now(),
            history: RunHistory::empty(def),
        }
    }

    pub fn into_history(self) -> RunHistory {
        self.history
    }

    /// The history so far.
    pub fn history(&self) -> RunHistory {
        self.history.clone()
    }

    pub(super) fn started(&mut self, step: usize) {
        self.started_at(step, self.started.elapsed());
    }

    pub(super) fn completed(&mut self, def: &Definition, step: usize) {
        self.completed_at(def, step, self.started.elapsed());
    }

    /// A chain edge on the straight-line path: `from` completed and `to` started at one
    /// instant (one clock read instead of two).
    pub(super) fn handed_over(&mut self, def: &Definition, from: usize, to: usize) {
        let at = self.started.elapsed();
        self.completed_at(def, from, at);
        self.started_at(to, at);
    }

    fn started_at(&mut self, step: usize, at: Duration) {
        self.history.steps[step].started_at.get_or_insert(at);
    }

    fn completed_at(&mut self, def: &Definition, step: usize, at: Duration) {
        self.history.path.push(def.steps[step].name);
        self.history.steps[step].finished_at = Some(at);
    }

    pub(super) fn fell_back(&mut self, step: usize, error: &crate::error::StepError) {
        self.history.steps[step].fell_back = Some(error.clone());
    }

    pub(super) fn restored(&mut self, def: &Definition, step: usize) {
        self.history.restored.push(def.steps[step].name);
    }
}

impl<W: Workflow> Driver<'_, '_, W> {
    /// Copies each step's final status into the history, if one is recorded.
    pub(super) fn record_outcomes(&mut self) {
        let Some(rec) = self.recorder.as_deref_mut() else {
            return;
        };
        for (index, (record, st)) in rec.history.steps.iter_mut().zip(&self.steps).enumerate() {
            record.children = self.run.children.histories(self.def.steps[index].name);
            record.attempts = st.attempts;
            record.completions = st.completions;
            record.outcome = match st.status {
                Status::Failed => StepOutcome::Failed,
                Status::Running | Status::Signalled | Status::Cancelled => StepOutcome::Cancelled,
                _ if st.completions > 0 => StepOutcome::Completed,
                _ => StepOutcome::Skipped,
            };
        }
    }
}
