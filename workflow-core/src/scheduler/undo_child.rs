//! Undoing a completed child workflow step as a unit, when its parent compensates: the
//! child's own compensations run, latest first, and the parent journals the child as undone.

use super::Driver;
use crate::child::ChildUndo;
use crate::context::RunInfo;
use crate::definition::{ChildDef, StepIndex};
use crate::error::StepError;
use crate::events::RunEvent;
use crate::journal::JournalEvent;
use crate::report::CompensationRecord;
use crate::run_id::RunId;
use crate::store::{RunStatus, StoreError};
use crate::workflow::Workflow;

impl<W: Workflow + Sync> Driver<'_, '_, W> {
    /// Undoes completion `completion` of child step `step`; `None` when the child has no saga
    /// steps. A compensation of the child that failed for good is the record's error.
    pub(super) async fn undo_child(
        &mut self,
        step: StepIndex,
        completion: usize,
        child: ChildDef,
    ) -> Result<Option<CompensationRecord>, StoreError> {
        let (item, undo) = self
            .child_undos
            .remove(&(step, completion))
            .unwrap_or((None, None));
        if !child.has_compensations() {
            return Ok(None);
        }
        let undo = match undo {
            Some(undo) => Some(undo),
            None => {
                let retries = self.policy(step).retries;
                let name = self.def.steps[step as usize].name;
                find_completed_child(&self.run, step, name, item, retries).await?
            }
        };
        let undone = match undo {
            Some(undo) => undo.undo(self.run.engine.as_ref()).await,
            None => Ok(Vec::new()),
        };
        let error = match undone {
            Ok(records) => records.into_iter().find_map(|r| r.error),
            Err(error) => Some(StepError::msg(error.to_string())),
        };
        let def = &self.def.steps[step as usize];
        if let Some(journal) = self.journal.as_deref_mut() {
            let event = JournalEvent::Compensated {
                step: def.name.to_owned(),
                completion: completion as u64,
                error: error.as_ref().map(|e| e.to_string()),
            };
            journal.record(event).await?;
        }
        self.compensated.insert((step, completion));
        let failed = error.is_some();
        self.emit(|| RunEvent::Compensated { step, failed });
        Ok(Some(CompensationRecord {
            step: def.name,
            compensation: (child.definition)().name,
            attempts: 1,
            error,
        }))
    }
}

/// The completed durable child run of `step` (item `item`) that a resumed run restored from
/// its journal: its latest completed attempt.
async fn find_completed_child(
    run: &RunInfo,
    step: StepIndex,
    name: &str,
    item: Option<usize>,
    retries: u32,
) -> Result<Option<ChildUndo>, StoreError> {
    let (Some(engine), Some(durable)) = (run.engine.as_ref(), run.children.durable_child(step))
    else {
        return Ok(None);
    };
    for attempt in (1..=retries + 1).rev() {
        let run_id = RunId::child(&run.run_id, name, item, attempt);
        match engine.status(&run_id).await {
            Ok(record) if record.summary.status == RunStatus::Completed => {
                return Ok(Some(ChildUndo::Durable { run_id, durable }));
            }
            Ok(_) | Err(StoreError::UnknownRun(_)) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(None)
}
