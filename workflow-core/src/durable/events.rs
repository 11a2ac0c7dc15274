//! A durable run's events and history, read from its journal, so any process can follow a
//! run and show it: step completions (with their outputs), `for_each` progress, waits,
//! signals, retries put off, the stop and each compensation, then the run's end.

use super::DurableEngine;
use crate::definition::{Definition, StepIndex};
use crate::error::WorkflowError;
use crate::events::RunEvent;
use crate::history::RunHistory;
use crate::journal::JournalEvent;
use crate::run_id::RunId;
use crate::store::{JournalRecord, RunRecord};
use crate::stored_error::StoredError;
use crate::workflow::Durable;

/// The events of a stored run, in journal order, then its end if it finished.
pub(crate) fn stored_events(
    def: &'static Definition,
    record: &RunRecord,
    journal: &[JournalRecord],
) -> Vec<RunEvent<StepIndex>> {
    let index = |name: &str| {
        def.steps
            .iter()
            .position(|s| s.name == name)
            .map(|i| i as StepIndex)
    };
    let signal = |step: StepIndex| def.steps[step as usize].signal.map_or("?", |s| s.name);
    let mut items = std::collections::HashMap::<StepIndex, usize>::new();
    let mut events = vec![RunEvent::RunStarted];
    for entry in journal {
        let event = match &entry.event {
            JournalEvent::StepCompleted { step, .. } => {
                index(step).map(|step| RunEvent::StepCompleted {
                    step,
                    duration: None,
                })
            }
            JournalEvent::ItemCompleted { step, .. } => index(step).map(|step| {
                let done = items.entry(step).or_default();
                *done += 1;
                RunEvent::ForEachProgress {
                    step,
                    done: *done,
                    total: None,
                }
            }),
            JournalEvent::WaitStarted { step, .. } => {
                index(step).map(|step| RunEvent::WaitingForSignal {
                    step,
                    signal: signal(step),
                })
            }
            JournalEvent::SignalConsumed { step, .. } => {
                index(step).map(|step| RunEvent::SignalReceived {
                    step,
                    signal: signal(step),
                    timed_out: false,
                })
            }
            JournalEvent::SignalTimedOut { step } => {
                index(step).map(|step| RunEvent::SignalReceived {
                    step,
                    signal: signal(step),
                    timed_out: true,
                })
            }
            JournalEvent::RetryScheduled {
                step,
                item,
                attempt,
                ..
            } => index(step).map(|step| RunEvent::StepFailed {
                step,
                item: item.map(|i| i as usize),
                attempt: attempt.saturating_sub(1),
                error: "failed; retry scheduled".into(),
                will_retry: true,
            }),
            JournalEvent::Stopped { cause } => Some(RunEvent::Compensating {
                cause: StoredError::decode(cause).map_or_else(|| cause.clone(), |e| e.message(def)),
            }),
            JournalEvent::Compensated { step, error, .. } => {
                index(step).map(|step| RunEvent::Compensated {
                    step,
                    failed: error.is_some(),
                })
            }
            // A retry: the steps that run again report anew.
            JournalEvent::Rewound { .. } => None,
        };
        events.extend(event);
    }
    let status = record.summary.status;
    if status.is_finished() {
        let error = record.error.as_deref().map(|text| {
            StoredError::decode(text).map_or_else(|| text.to_owned(), |e| e.message(def))
        });
        events.push(RunEvent::RunFinished { status, error });
    }
    events
}

impl DurableEngine {
    /// The run's record and journal, checked to be a run of `W`.
    pub(super) async fn read_run<W: Durable>(
        &self,
        run_id: &RunId,
    ) -> Result<(RunRecord, Vec<JournalRecord>), WorkflowError> {
        let record = self.load::<W>(run_id).await?;
        super::check_workflow::<W>(&record)?;
        let journal = self
            .store()
            .journal(run_id)
            .await
            .map_err(super::store_error::<W>(run_id))?;
        Ok((record, journal))
    }

    /// The run's history from its journal: each step's outcome, completions and output (as
    /// JSON), the path taken, and the histories of its child workflow runs.
    pub(crate) async fn stored_history<W: Durable>(
        &self,
        run_id: &RunId,
    ) -> Result<RunHistory, WorkflowError> {
        let (record, journal) = self.read_run::<W>(run_id).await?;
        let journal = crate::store::effective_journal(journal);
        let def = W::definition();
        let events = stored_events(def, &record, &journal);
        let mut history = RunHistory::from_events(def, &events);
        history.attach_outputs(&journal);
        self.nest_child_histories(def, run_id, &mut history)
            .await
            .map_err(super::store_error::<W>(run_id))?;
        if let Some(Err(error)) = record
            .summary
            .status
            .is_finished()
            .then(|| super::run::finished_result::<W>(&record).map(drop))
        {
            history.mark_failure(&error);
        }
        Ok(history)
    }
}
