//! What happened in a run: which steps ran, in which order, how often; which were skipped.

use std::fmt::Write;
use std::time::Duration;

use crate::definition::{Definition, StepIndex};
use crate::error::{StepError, WorkflowError};
use crate::events::RunEvent;
use crate::journal::JournalEvent;
use crate::store::JournalRecord;

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
    /// Waits for its signal: the run has not finished (a history read while it runs).
    Waiting,
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
    /// The error after which its fallback (`on_failure = method`) produced its output.
    pub fell_back: Option<StepError>,
    /// Its output as JSON, when read from a durable run's journal (for `for_each`, an array
    /// of the items' outputs in item order); `None` in memory.
    pub output: Option<serde_json::Value>,
    /// For a child workflow step (`workflow = Child`): the history of each child run it
    /// started (each attempt, each `for_each` item), in the order they finished.
    pub children: Vec<RunHistory>,
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
    /// Saga steps whose compensation succeeded, in the order they were undone.
    pub compensated: Vec<&'static str>,
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

impl RunHistory {
    /// A history of `def` where nothing ran yet: every step skipped.
    pub(crate) fn empty(def: &Definition) -> RunHistory {
        RunHistory {
            steps: def
                .steps
                .iter()
                .map(|s| StepRecord {
                    step: s.name,
                    outcome: StepOutcome::Skipped,
                    attempts: 0,
                    completions: 0,
                    started_at: None,
                    finished_at: None,
                    fell_back: None,
                    output: None,
                    children: Vec::new(),
                })
                .collect(),
            path: Vec::new(),
            restored: Vec::new(),
            compensated: Vec::new(),
        }
    }

    /// The history told by a run's events: outcomes, attempts, completions and the path (no
    /// times: events read back from a journal carry none).
    pub(crate) fn from_events(def: &Definition, events: &[RunEvent<StepIndex>]) -> RunHistory {
        let mut history = RunHistory::empty(def);
        for event in events {
            let Some(&step) = event.step() else { continue };
            let record = &mut history.steps[step as usize];
            match event {
                RunEvent::StepStarted { .. } => record.attempts += 1,
                RunEvent::StepCompleted { .. } => {
                    record.completions += 1;
                    record.outcome = StepOutcome::Completed;
                    history.path.push(record.step);
                }
                RunEvent::ForEachProgress { .. } => record.outcome = StepOutcome::Completed,
                RunEvent::StepFailed {
                    will_retry: false, ..
                } => record.outcome = StepOutcome::Failed,
                RunEvent::WaitingForSignal { .. } => record.outcome = StepOutcome::Waiting,
                RunEvent::StepCancelled { .. } => record.outcome = StepOutcome::Cancelled,
                RunEvent::FellBack { error, .. } => {
                    record.fell_back = Some(StepError::msg(error.clone()));
                }
                RunEvent::SignalReceived { .. } if record.outcome == StepOutcome::Waiting => {
                    record.outcome = StepOutcome::Skipped;
                }
                RunEvent::Compensated { failed: false, .. } => {
                    history.compensated.push(record.step);
                }
                _ => {}
            }
        }
        history
    }

    /// Each step's journaled output, as JSON.
    pub(crate) fn attach_outputs(&mut self, journal: &[JournalRecord]) {
        let mut items: Vec<Vec<(u64, serde_json::Value)>> = vec![Vec::new(); self.steps.len()];
        for entry in journal {
            let (step, item, bytes) = match &entry.event {
                JournalEvent::StepCompleted { step, output } => (step, None, output),
                JournalEvent::ItemCompleted { step, item, output } => (step, Some(*item), output),
                _ => continue,
            };
            let Some(i) = self.steps.iter().position(|r| r.step == step) else {
                continue;
            };
            let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
                continue;
            };
            match item {
                None => self.steps[i].output = Some(value),
                Some(item) => items[i].push((item, value)),
            }
        }
        for (record, mut items) in self.steps.iter_mut().zip(items) {
            if !items.is_empty() {
                items.sort_by_key(|(item, _)| *item);
                record.output = Some(serde_json::Value::Array(
                    items.into_iter().map(|(_, v)| v).collect(),
                ));
            }
        }
    }

    /// The workflow's Mermaid flowchart ([`Definition::to_mermaid`]) with each step styled by
    /// its outcome in this run: classes `completed`, `skipped`, `failed`, `cancelled`,
    /// `waiting`, and `compensated` for a completed saga step that was undone.
    pub fn to_mermaid(&self, definition: &Definition) -> String {
        let mut out = definition.to_mermaid();
        out.push_str(concat!(
            "    classDef completed fill:#d1fae5,stroke:#059669,color:#064e3b\n",
            "    classDef skipped fill:#f3f4f6,stroke:#9ca3af,color:#6b7280,stroke-dasharray:4 3\n",
            "    classDef failed fill:#fee2e2,stroke:#dc2626,color:#7f1d1d\n",
            "    classDef cancelled fill:#fef3c7,stroke:#d97706,color:#78350f\n",
            "    classDef waiting fill:#dbeafe,stroke:#2563eb,color:#1e3a8a\n",
            "    classDef compensated fill:#e0e7ff,stroke:#4f46e5,color:#312e81\n",
        ));
        for (node, class) in self.node_classes("") {
            let _ = writeln!(out, "    class {node} {class}");
        }
        out
    }

    /// Each node of the diagrams with its class: the steps of this run, then those of the last
    /// child run of each child workflow step (named `{step}__{child step}`).
    fn node_classes(&self, prefix: &str) -> Vec<(String, &'static str)> {
        let mut classes: Vec<(String, &'static str)> = self
            .steps
            .iter()
            .map(|record| (format!("{prefix}{}", record.step), self.class(record)))
            .collect();
        for record in &self.steps {
            if let Some(child) = record.children.last() {
                classes.extend(child.node_classes(&format!("{prefix}{}__", record.step)));
            }
        }
        classes
    }

    /// The workflow's DOT graph ([`Definition::to_dot`]) with each step filled by its outcome
    /// (the same classes as [`RunHistory::to_mermaid`], as colours, and as a text label).
    pub fn to_dot(&self, definition: &Definition) -> String {
        let mut out = definition.to_dot();
        out.truncate(out.trim_end().trim_end_matches('}').len());
        for (node, class) in self.node_classes("") {
            let fill = match class {
                "completed" => "#d1fae5",
                "failed" => "#fee2e2",
                "cancelled" => "#fef3c7",
                "waiting" => "#dbeafe",
                "compensated" => "#e0e7ff",
                _ => "#f3f4f6",
            };
            let _ = writeln!(
                out,
                "    {node} [style=filled, fillcolor=\"{fill}\", xlabel=\"{class}\"];"
            );
        }
        out.push_str("}\n");
        out
    }

    /// A step's class in the diagrams.
    pub fn class(&self, record: &StepRecord) -> &'static str {
        if self.compensated.contains(&record.step) {
            return "compensated";
        }
        match record.outcome {
            StepOutcome::Completed => "completed",
            StepOutcome::Skipped => "skipped",
            StepOutcome::Failed => "failed",
            StepOutcome::Cancelled => "cancelled",
            StepOutcome::Waiting => "waiting",
        }
    }

    /// Marks what the run's error says: its failed step, the steps it cancelled, the saga
    /// steps it compensated.
    pub(crate) fn mark_failure(&mut self, error: &WorkflowError) {
        let mut set = |name: &str, outcome| {
            if let Some(record) = self.steps.iter_mut().find(|r| r.step == name) {
                record.outcome = outcome;
            }
        };
        if let WorkflowError::StepFailed { step, .. } = error {
            set(step, StepOutcome::Failed);
        }
        for step in error
            .report()
            .map(|r| r.cancelled.clone())
            .unwrap_or_default()
        {
            set(step, StepOutcome::Cancelled);
        }
        if let Some(report) = error.report() {
            self.compensated = report.compensated();
        }
    }
}
