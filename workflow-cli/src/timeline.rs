//! `runs show`'s timeline as a table: each step with its outcome, `for_each` items, when it
//! completed (from the run's start) and how long it took ([`workflow_core::dashboard::timeline`]).

use std::time::{Duration, SystemTime};

use serde_json::json;
use workflow_core::store::{JournalRecord, RunRecord, StoredDefinition};

use crate::output::Table;

/// The timeline of `run` (its journal already the effective one), with each record's commit
/// time by `seq`.
pub fn timeline(
    definition: Option<&StoredDefinition>,
    run: &RunRecord,
    journal: &[JournalRecord],
    times: &[(u64, Option<SystemTime>)],
) -> Table {
    let rows = workflow_core::dashboard::timeline(definition, run, journal, times);
    let mut table = Table::new(&["step", "outcome", "items", "completed at", "took"]);
    for row in rows {
        table.row(
            vec![
                row.step.clone(),
                row.outcome.to_owned(),
                row.items.map_or_else(String::new, |n| n.to_string()),
                row.completed_after
                    .map_or_else(String::new, |o| format!("+{}", duration_text(o))),
                row.took.map_or_else(String::new, duration_text),
            ],
            json!({
                "step": row.step,
                "outcome": row.outcome,
                "items": row.items,
                "completed_after_ms": row.completed_after.map(|o| o.as_millis() as u64),
                "took_ms": row.took.map(|t| t.as_millis() as u64),
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
