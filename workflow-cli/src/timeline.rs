//! `runs show`'s timeline: each step with its outcome, `for_each` items, when it completed
//! (from the run's start) and how long it took (since the last of its upstream steps, or the
//! run's start, completed), from the journal's commit times.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde_json::json;
use workflow_core::store::{JournalRecord, RunRecord, StoredDefinition};
use workflow_core::JournalEvent;

use crate::output::Table;

/// The timeline of `run` (its journal already the effective one), with each record's commit
/// time by `seq`.
pub fn timeline(
    definition: Option<&StoredDefinition>,
    run: &RunRecord,
    journal: &[JournalRecord],
    times: &[(u64, Option<SystemTime>)],
) -> Table {
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
    let class = crate::graph::classes(run, journal);
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
    let started = run.summary.created_at;
    let mut table = Table::new(&["step", "outcome", "items", "completed at", "took"]);
    for (step, after) in &steps {
        let done = completed.get(step.as_str()).copied();
        let from = after
            .iter()
            .filter_map(|up| completed.get(up.as_str()).copied())
            .max()
            .or(started);
        let took = done.zip(from).and_then(|(d, f)| d.duration_since(f).ok());
        let offset = done
            .zip(started)
            .and_then(|(d, s)| d.duration_since(s).ok());
        let outcome = class.get(step).copied().unwrap_or("pending");
        let count = items.get(step.as_str()).copied();
        table.row(
            vec![
                step.clone(),
                outcome.to_owned(),
                count.map_or_else(String::new, |n| n.to_string()),
                offset.map_or_else(String::new, |o| format!("+{}", duration_text(o))),
                took.map_or_else(String::new, duration_text),
            ],
            json!({
                "step": step,
                "outcome": outcome,
                "items": count,
                "completed_after_ms": offset.map(|o| o.as_millis() as u64),
                "took_ms": took.map(|t| t.as_millis() as u64),
            }),
        );
    }
    table
}

/// A duration as the tables print it: `1.234 s`, `12 ms`.
fn duration_text(duration: Duration) -> String {
    if duration >= Duration::from_secs(1) {
        format!("{:.3} s", duration.as_secs_f64())
    } else {
        format!("{} ms", duration.as_millis())
    }
}
