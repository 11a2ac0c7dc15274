//! The histories of a stored run's child workflow runs, read from the store by their
//! deterministic ids (`~{parent}/{step}[/{item}][@{attempt}]`) and nested into the parent's
//! [`RunHistory`], so any process shows a composed run whole.

use futures::future::BoxFuture;
use futures::FutureExt;

use super::events::stored_events;
use super::DurableEngine;
use crate::definition::Definition;
use crate::history::RunHistory;
use crate::run_id::RunId;
use crate::store::StoreError;
use crate::stored_error::StoredError;

impl DurableEngine {
    /// Nests into `history` (of run `run_id` of `def`) the history of every child run its
    /// child workflow steps started: every attempt, every item, in that order; theirs too.
    pub(super) fn nest_child_histories<'a>(
        &'a self,
        def: &'static Definition,
        run_id: &'a RunId,
        history: &'a mut RunHistory,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        async move {
            for (index, step) in def.steps.iter().enumerate() {
                let Some(child) = step.child else { continue };
                let child_def = (child.definition)();
                // Items start in order, so the first item without a run ends the search.
                let items: Box<dyn Iterator<Item = Option<usize>> + Send> = match step.for_each {
                    Some(_) => Box::new((0..).map(Some)),
                    None => Box::new(std::iter::once(None)),
                };
                for item in items {
                    let mut found = false;
                    for attempt in 1..=step.policy.retries + 1 {
                        let id = RunId::child(run_id, step.name, item, attempt);
                        let Some(child_history) = self.child_history(child_def, &id).await? else {
                            break;
                        };
                        history.steps[index].children.push(child_history);
                        found = true;
                    }
                    if !found {
                        break;
                    }
                }
            }
            Ok(())
        }
        .boxed()
    }

    /// The stored history of child run `run_id` of `def`, with its own children; `None` when
    /// there is no such run.
    async fn child_history(
        &self,
        def: &'static Definition,
        run_id: &RunId,
    ) -> Result<Option<RunHistory>, StoreError> {
        let Some(record) = self.store().load_run(run_id).await? else {
            return Ok(None);
        };
        let journal = self.store().journal(run_id).await?;
        let mut history = RunHistory::from_events(def, &stored_events(def, &record, &journal));
        history.attach_outputs(&journal);
        if let Some(error) = record.error.as_deref().and_then(StoredError::decode) {
            history.mark_failure(&error.into_error(def, run_id));
        }
        self.nest_child_histories(def, run_id, &mut history).await?;
        Ok(Some(history))
    }
}
