//! Run events from the scheduler, for runs started with a handle (see [`crate::RunEvent`]):
//! nothing is built when nobody listens.

use super::{Driven, Driver, Status, Tag};
use crate::definition::StepIndex;
use crate::error::{StepError, WorkflowError};
use crate::events::RunEvent;
use crate::store::RunStatus;
use crate::workflow::Workflow;

impl<W: Workflow> Driver<'_, '_, W> {
    /// Records the event `make` builds, if anyone listens.
    pub(super) fn emit(&self, make: impl FnOnce() -> RunEvent<StepIndex>) {
        if let Some(events) = &self.events {
            events.push(make());
        }
    }

    pub(super) fn emit_failed(&self, tag: Tag, error: &StepError, will_retry: bool) {
        let item = self.def.steps[tag.step as usize].for_each.map(|_| tag.item);
        self.emit(|| RunEvent::StepFailed {
            step: tag.step,
            item,
            attempt: tag.attempt,
            error: error.to_string(),
            will_retry,
        });
    }

    /// The steps that never ran, then how the run finished (nothing for a run that stays in
    /// the store to be continued).
    pub(super) fn emit_end<O>(&self, driven: &Driven<O>) {
        let Some(events) = &self.events else { return };
        let Driven::Finished(result) = driven else {
            return;
        };
        if matches!(
            result,
            Err(WorkflowError::Store { .. } | WorkflowError::Interrupted { .. })
        ) {
            return;
        }
        for (step, st) in self.steps.iter().enumerate() {
            if st.attempts == 0 && st.completions == 0 && st.status != Status::Signalled {
                events.push(RunEvent::StepSkipped {
                    step: step as StepIndex,
                });
            }
        }
        let (status, error) = match result {
            Ok(_) => (RunStatus::Completed, None),
            Err(error @ WorkflowError::Cancelled { .. }) => {
                (RunStatus::Cancelled, Some(error.to_string()))
            }
            Err(error) => (RunStatus::Failed, Some(error.to_string())),
        };
        events.push(RunEvent::RunFinished { status, error });
    }
}
