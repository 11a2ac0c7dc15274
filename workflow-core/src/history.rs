//! What happened in a run: which steps ran, in which order, how often; which were skipped.

use std::time::Duration;

/// How a step ended in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// Completed (at least once, for a step inside a loop).
    Completed,
    /// Never started: an untaken branch upstream, or a join that could not fire.
    Skipped,
    /// Failed for good: the run's error names it.
    Failed,
    /// Was in flight when the run ended (another step failed); its future was dropped.
    Cancelled,
}

/// One step's record in a [`RunHistory`].
#[derive(Debug, Clone)]
pub struct StepRecord {
    /// Step name.
    pub step: &'static str,
    /// How it ended.
    pub outcome: StepOutcome,
    /// Attempts started (retries and `for_each` items included).
    pub attempts: u32,
    /// Completions (more than one for a step inside a loop).
    pub completions: u32,
    /// Time from the run's start to the step's first start.
    pub started_at: Option<Duration>,
    /// Time from the run's start to the step's last completion.
    pub finished_at: Option<Duration>,
}

/// The history of one run, from [`crate::Engine::run_with`].
#[derive(Debug, Clone, Default)]
pub struct RunHistory {
    /// One record per step, in declaration order.
    pub steps: Vec<StepRecord>,
    /// Names of completed steps in completion order (loop steps once per iteration); on a
    /// resumed run this includes the steps restored from the journal.
    pub path: Vec<&'static str>,
    /// Steps whose results a resumed run restored from its journal instead of running them,
    /// in journal order (a `for_each` step once per restored item).
    pub restored: Vec<&'static str>,
}

impl RunHistory {
    /// The record of a step by name.
    pub fn step(&self, name: &str) -> Option<&StepRecord> {
        self.steps.iter().find(|r| r.step == name)
    }

    /// Names of the steps with the given outcome, in declaration order.
    pub fn with_outcome(&self, outcome: StepOutcome) -> Vec<&'static str> {
        self.steps
            .iter()
            .filter(|r| r.outcome == outcome)
            .map(|r| r.step)
            .collect()
    }
}
