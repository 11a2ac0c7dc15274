//! Retrying a finished run from one of its steps (`workflow runs retry ID --from STEP`): the
//! step, every step downstream of it (exact, from the static graph), and every saga step the
//! stopped run compensated (its compensation undid it) run again; the other completed steps
//! keep their journaled outputs. Needs only the store: the definition is the stored one.

use std::collections::BTreeSet;

use crate::journal::JournalEvent;
use crate::run_id::RunId;
use crate::store::{definition_of, effective_journal, RunStatus, Store, StoreError};

/// What a retry from a step does to a finished run (what a dry run prints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPlan {
    /// The run.
    pub run_id: RunId,
    /// Its workflow.
    pub workflow: String,
    /// Its status before the retry.
    pub status: RunStatus,
    /// The step asked for.
    pub from: String,
    /// The steps that run again (or for the first time), in declaration order.
    pub rerun: Vec<String>,
    /// Among them, the saga steps the stopped run had compensated.
    pub undone: Vec<String>,
    /// The completed steps whose journaled outputs are kept, in declaration order.
    pub kept: Vec<String>,
}

/// The plan of a retry of finished run `run_id` from step `from`; nothing is written.
pub async fn plan_retry(
    store: &dyn Store,
    run_id: &RunId,
    from: &str,
) -> Result<RetryPlan, StoreError> {
    let record = store
        .load_run(run_id)
        .await?
        .ok_or_else(|| StoreError::UnknownRun(run_id.clone()))?;
    let run = &record.summary;
    if !run.status.is_finished() {
        return Err(StoreError::NotFinished {
            run_id: run_id.clone(),
            status: run.status,
        });
    }
    let definition = definition_of(store, run).await?;
    let steps = definition.steps();
    if !steps.iter().any(|s| s.name == from) {
        return Err(StoreError::UnknownStep {
            run_id: run_id.clone(),
            step: from.to_owned(),
            known: steps.iter().map(|s| s.name.clone()).collect(),
        });
    }
    let journal = effective_journal(store.journal(run_id).await?);
    let mut completed = BTreeSet::new();
    let mut undone = BTreeSet::new();
    for record in &journal {
        match &record.event {
            JournalEvent::StepCompleted { step, .. } | JournalEvent::ItemCompleted { step, .. } => {
                completed.insert(step.clone());
            }
            JournalEvent::Compensated { step, .. } => {
                undone.insert(step.clone());
            }
            _ => {}
        }
    }
    // The steps to forget: `from`, the undone ones, and everything downstream of them.
    let mut forget: BTreeSet<String> = undone.iter().cloned().collect();
    forget.insert(from.to_owned());
    loop {
        let before = forget.len();
        for step in &steps {
            if step.after().iter().any(|up| forget.contains(*up)) {
                forget.insert(step.name.clone());
            }
        }
        if forget.len() == before {
            break;
        }
    }
    let in_order = |keep: &dyn Fn(&str) -> bool| -> Vec<String> {
        steps
            .iter()
            .filter(|s| keep(&s.name))
            .map(|s| s.name.clone())
            .collect()
    };
    Ok(RetryPlan {
        run_id: run_id.clone(),
        workflow: run.workflow.clone(),
        status: run.status,
        from: from.to_owned(),
        rerun: in_order(&|s| forget.contains(s) || !completed.contains(s)),
        undone: in_order(&|s| undone.contains(s)),
        kept: in_order(&|s| completed.contains(s) && !forget.contains(s)),
    })
}

/// Retries finished run `run_id` from step `from` (see [`plan_retry`]): the forgotten steps'
/// records are rewound in its journal and the run is ready again, for a worker that has its
/// definition. Returns the plan it carried out.
pub async fn retry_from(
    store: &dyn Store,
    run_id: &RunId,
    from: &str,
) -> Result<RetryPlan, StoreError> {
    let plan = plan_retry(store, run_id, from).await?;
    let rewound = JournalEvent::Rewound {
        steps: plan.rerun.clone(),
    };
    store.reopen(run_id, &rewound).await?;
    Ok(plan)
}
