//! The child workflow runs of a stored run, found in the store by their deterministic ids
//! (`~{parent}/{step}[/{item}][@{attempt}]`): their histories nested into the parent's
//! [`RunHistory`], and their events for a follower of the parent, so any process shows a
//! composed run whole.

use futures::future::BoxFuture;
use futures::FutureExt;

use super::events::stored_events;
use super::DurableEngine;
use crate::definition::{Definition, StepIndex};
use crate::history::RunHistory;
use crate::run_id::RunId;
use crate::store::{effective_journal, RunRecord, Store, StoreError};
use crate::stored_error::StoredError;

/// One stored child run of a run.
pub(super) struct StoredChild {
    /// The parent's step.
    pub step: StepIndex,
    pub item: Option<usize>,
    pub run_id: RunId,
    pub definition: &'static Definition,
    pub record: RunRecord,
}

impl DurableEngine {
    /// The child runs that the child workflow steps of run `run_id` (of `def`) started: every
    /// attempt, every item, in that order.
    pub(super) async fn stored_children(
        &self,
        def: &'static Definition,
        run_id: &RunId,
    ) -> Result<Vec<StoredChild>, StoreError> {
        let mut children = Vec::new();
        for (index, step) in def.steps.iter().enumerate() {
            let Some(child) = step.child else { continue };
            // Items start in order, so the first item without a run ends the search.
            let items: Box<dyn Iterator<Item = Option<usize>> + Send> = match step.for_each {
                Some(_) => Box::new((0..).map(Some)),
                None => Box::new(std::iter::once(None)),
            };
            for item in items {
                let attempts = self
                    .child_attempts(run_id, step.name, item, step.policy.retries)
                    .await?;
                if attempts.is_empty() {
                    break;
                }
                children.extend(attempts.into_iter().map(|(id, record)| StoredChild {
                    step: index as StepIndex,
                    item,
                    run_id: id,
                    definition: (child.definition)(),
                    record,
                }));
            }
        }
        Ok(children)
    }

    /// The stored child runs of step `step` (item `item`) of run `parent`, one per attempt of
    /// the step (at most `retries + 1`), in order (see [`child_attempts`]).
    pub(crate) async fn child_attempts(
        &self,
        parent: &RunId,
        step: &str,
        item: Option<usize>,
        retries: u32,
    ) -> Result<Vec<(RunId, RunRecord)>, StoreError> {
        child_attempts(self.store(), parent, step, item, 1..=retries + 1).await
    }

    /// Nests into `history` (of run `run_id` of `def`) the history of every child run its
    /// child workflow steps started; theirs too.
    pub(super) fn nest_child_histories<'a>(
        &'a self,
        def: &'static Definition,
        run_id: &'a RunId,
        history: &'a mut RunHistory,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        async move {
            for child in self.stored_children(def, run_id).await? {
                let journal = effective_journal(self.store().journal(&child.run_id).await?);
                let (def, record) = (child.definition, &child.record);
                let mut nested =
                    RunHistory::from_events(def, &stored_events(def, record, &journal));
                nested.attach_outputs(&journal);
                if let Some(error) = record.error.as_deref().and_then(StoredError::decode) {
                    nested.mark_failure(&error.into_error(def, &child.run_id));
                }
                self.nest_child_histories(def, &child.run_id, &mut nested)
                    .await?;
                history.steps[child.step as usize].children.push(nested);
            }
            Ok(())
        }
        .boxed()
    }
}

/// The stored child runs of step `step` (item `item`) of run `parent`, one per attempt of the
/// step among `attempts` (counted from 1), in order. Attempts start in order, so the first
/// attempt without a run ends the search.
pub(crate) async fn child_attempts(
    store: &dyn Store,
    parent: &RunId,
    step: &str,
    item: Option<usize>,
    attempts: impl IntoIterator<Item = u32>,
) -> Result<Vec<(RunId, RunRecord)>, StoreError> {
    let mut found = Vec::new();
    for attempt in attempts {
        let id = RunId::child(parent, step, item, attempt);
        let Some(record) = store.load_run(&id).await? else {
            break;
        };
        found.push((id, record));
    }
    Ok(found)
}
