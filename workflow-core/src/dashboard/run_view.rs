//! What the journal says of each step of a stored run, for the tools that show runs without
//! the workflow's code (the dashboard, the command line): its outcome and its timeline.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::journal::JournalEvent;
use crate::store::{JournalRecord, RunRecord, StoredDefinition};

/// Each step's outcome from the (effective) journal and the run's stored error: `completed`,
/// `waiting`, `compensated`, `failed`; steps it does not name are `pending`.
pub fn step_outcomes(run: &RunRecord, journal: &[JournalRecord]) -> BTreeMap<String, &'static str> {
    let mut class = BTreeMap::new();
    let mut waiting = std::collections::BTreeSet::new();
    for record in journal {
        match &record.event {
            JournalEvent::StepCompleted { step, .. } | JournalEvent::ItemCompleted { step, .. } => {
                class.insert(step.clone(), "completed");
            }
            JournalEvent::WaitStarted { step, .. } => {
                waiting.insert(step.clone());
            }
            JournalEvent::SignalConsumed { step, .. } | JournalEvent::SignalTimedOut { step } => {
                waiting.remove(step);
            }
            JournalEvent::Compensated { step, .. } => {
                class.insert(step.clone(), "compensated");
            }
            _ => {}
        }
    }
    for step in waiting {
        class.entry(step).or_insert("waiting");
    }
    let failed = run
        .error
        .as_deref()
        .and_then(|e| serde_json::from_str::<serde_json::Value>(e).ok())
        .and_then(|e| e["step"].as_str().map(str::to_owned));
    if let Some(step) = failed {
        class.insert(step, "failed");
    }
    class
}

/// One step of a run's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineRow {
    /// The step.
    pub step: String,
    /// Its outcome (see [`step_outcomes`]).
    pub outcome: &'static str,
    /// For a `for_each` step: items completed.
    pub items: Option<u64>,
    /// When it (its last item) completed, from the run's creation.
    pub completed_after: Option<Duration>,
    /// How long it took: since the last of its upstream steps (or the run's creation)
    /// completed.
    pub took: Option<Duration>,
}

/// The run's steps in definition order (journal order without a definition), each with its
/// outcome and times from the journal's commit times.
pub fn timeline(
    definition: Option<&StoredDefinition>,
    run: &RunRecord,
    journal: &[JournalRecord],
    times: &[(u64, Option<SystemTime>)],
) -> Vec<TimelineRow> {
    let at: BTreeMap<u64, SystemTime> = times
        .iter()
        .filter_map(|(seq, at)| at.map(|at| (*seq, at)))
        .collect();
    let mut completed: BTreeMap<&str, SystemTime> = BTreeMap::new();
    let mut items: BTreeMap<&str, u64> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for record in journal {
        let step = match &record.event {
            JournalEvent::StepCompleted { step, .. } => step.as_str(),
            JournalEvent::ItemCompleted { step, .. } => {
                *items.entry(step.as_str()).or_default() += 1;
                step.as_str()
            }
            _ => continue,
        };
        if !order.contains(&step) {
            order.push(step);
        }
        if let Some(time) = at.get(&record.seq) {
            completed.insert(step, *time);
        }
    }
    let outcomes = step_outcomes(run, journal);
    let steps: Vec<(String, Vec<String>)> = match definition {
        Some(def) => def
            .steps()
            .into_iter()
            .map(|s| {
                let after = s.after().into_iter().map(str::to_owned).collect();
                (s.name, after)
            })
            .collect(),
        None => order
            .iter()
            .map(|s| ((*s).to_owned(), Vec::new()))
            .collect(),
    };
    let created = run.summary.created_at;
    steps
        .into_iter()
        .map(|(step, after)| {
            let done = completed.get(step.as_str()).copied();
            let from = after
                .iter()
                .filter_map(|up| completed.get(up.as_str()).copied())
                .max()
                .or(created);
            TimelineRow {
                outcome: outcomes.get(&step).copied().unwrap_or("pending"),
                items: items.get(step.as_str()).copied(),
                completed_after: done
                    .zip(created)
                    .and_then(|(d, c)| d.duration_since(c).ok()),
                took: done.zip(from).and_then(|(d, f)| d.duration_since(f).ok()),
                step,
            }
        })
        .collect()
}
