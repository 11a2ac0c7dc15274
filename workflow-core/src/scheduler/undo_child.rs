//! Undoing a completed child workflow as a unit, when its parent compensates: the child's own
//! compensations run, latest first, and the parent journals the child as undone. The child of
//! a `workflow = Child` step, or one a step body ran with `ctx.run_child`.

use super::Driver;
use crate::child::ChildUndo;
use crate::context::RunInfo;
use crate::definition::{Definition, StepIndex};
use crate::error::StepError;
use crate::report::CompensationRecord;
use crate::store::{RunStatus, StoreError};
use crate::workflow::Workflow;

impl<W: Workflow + Sync> Driver<'_, '_, W> {
    /// Undoes the child of completion `completion` of step `step`; `None` when the child has
    /// no saga steps (or is gone). A compensation of the child that failed for good is the
    /// record's error.
    pub(super) async fn undo_child(
        &mut self,
        step: StepIndex,
        completion: usize,
    ) -> Result<Option<CompensationRecord>, StoreError> {
        let def = &self.def.steps[step as usize];
        let (item, undo) = self
            .rare
            .as_deref_mut()
            .and_then(|rare| rare.child_undos.remove(&(step, completion)))
            .unwrap_or((None, None));
        let undo = match undo {
            Some(undo) => Some(undo),
            None => {
                let retries = self.policy(step).retries;
                let child = def.child.map(|child| (child.definition)());
                let at = ChildAt {
                    step,
                    name: def.name,
                    item,
                };
                find_completed_child(&self.run, at, child, retries).await?
            }
        };
        let Some(undo) = undo.filter(|undo| undo.definition.has_compensations()) else {
            return Ok(None);
        };
        let child = undo.definition.name;
        let error = match undo.undo().await {
            Ok(records) => records.into_iter().find_map(|r| r.error),
            Err(error) => Some(StepError::msg(error.to_string())),
        };
        let record = CompensationRecord {
            step: def.name,
            compensation: child,
            attempts: 1,
            error,
        };
        self.compensation_ended(step, completion, record)
            .await
            .map(Some)
    }
}

/// The completed durable child run of child step `step` (item `item`) that a resumed run
/// restored from its journal: its latest completed attempt.
async fn find_completed_child(
    run: &RunInfo,
    at: ChildAt,
    child: Option<&'static Definition>,
    retries: u32,
) -> Result<Option<ChildUndo>, StoreError> {
    let ChildAt { step, name, item } = at;
    let (Some(engine), Some(durable), Some(definition)) =
        (run.engine.as_ref(), run.children.durable_child(step), child)
    else {
        return Ok(None);
    };
    let attempts = engine
        .child_attempts(run.run_id(), name, item, retries)
        .await?;
    let completed = attempts
        .into_iter()
        .rev()
        .find(|(_, record)| record.summary.status == RunStatus::Completed);
    Ok(completed.map(|(run_id, _)| {
        let engine = engine.clone();
        ChildUndo::stored(definition, move || (durable.undo)(engine, run_id))
    }))
}

/// The parent step (and item) a child ran for.
struct ChildAt {
    step: StepIndex,
    name: &'static str,
    item: Option<usize>,
}
