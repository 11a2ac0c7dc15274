//! Ending a run early: drop what is in flight, journal the stop, compensate the completed
//! saga steps in reverse completion order, and build the error.

use super::{Driver, Status};
use crate::definition::StepIndex;
use crate::error::{StepError, WorkflowError};
use crate::events::RunEvent;
use crate::journal::JournalEvent;
use crate::report::{CompensationRecord, FailureReport};
use crate::store::StoreError;
use crate::stored_error::StoredError;
use crate::task::{Outcome, Tag, Task};
use crate::workflow::{StartInfo, Workflow};

/// Why the event loop stopped before the graph ran out of work.
pub(super) enum Stop {
    StepFailed {
        step: StepIndex,
        item: Option<usize>,
        attempts: u32,
        error: StepError,
    },
    LoopLimit {
        step: StepIndex,
        max_passes: u32,
    },
    Cancelled,
    Deadline(std::time::Duration),
    /// A signal step on an engine without a journal.
    NoSignals {
        step: StepIndex,
    },
    /// The journal says the run had already stopped, with this cause, before a restart.
    Resumed(String),
    /// The store failed: the run stops where it is, to be resumed later.
    Store(StoreError),
    /// A test plan's crash point: stop as a killed process would, after this step.
    Crash(StepIndex),
    /// Only parked signal waits are left: suspend the run in the store.
    Park {
        wake_at: Option<std::time::SystemTime>,
        waiting_for: String,
    },
    /// The worker lost the run's lease: stop at once and write nothing more.
    Fenced,
}

impl Stop {
    /// True when the run must stay as it is (to be resumed): no compensation, nothing journaled.
    pub(super) fn leaves_run_as_is(&self) -> bool {
        matches!(
            self,
            Stop::Store(_) | Stop::Crash(_) | Stop::Park { .. } | Stop::Fenced
        )
    }
}

impl<'a, W: Workflow + Sync> Driver<'a, '_, W> {
    /// Drops in-flight work, journals the stop, compensates, and returns the error.
    pub(super) async fn stop<T>(&mut self, stop: Stop) -> Result<T, WorkflowError> {
        self.run.children.mark_stopping();
        if let Err(e) = self.deliver_committing().await {
            return Err(self.store_error(e));
        }
        let cancelled = self.cancel_in_flight();
        // Children cancelled with their steps undo their own saga steps first.
        self.run.children.settle().await;
        // A stop journaled before a restart is not journaled again.
        let resumed = matches!(stop, Stop::Resumed(_));
        let error = self.error(stop, FailureReport::default());
        if let Some(journal) = self.journal.as_deref_mut() {
            if !resumed {
                let event = JournalEvent::Stopped {
                    cause: StoredError::from_error(&error).encode(),
                };
                if let Err(e) = journal.record(event).await {
                    return Err(self.store_error(e));
                }
            }
        }
        self.emit(|| RunEvent::Compensating {
            cause: error.cause(),
        });
        let compensations = match self.compensate().await {
            Ok(records) => records,
            Err(e) => return Err(self.store_error(e)),
        };
        let report = FailureReport {
            cancelled,
            compensations,
        };
        Err(error.with_report(report))
    }

    pub(super) fn store_error(&self, error: StoreError) -> WorkflowError {
        WorkflowError::Store {
            workflow: self.def.name,
            run_id: self.run.run_id().clone(),
            error,
        }
    }

    pub(super) fn error(&self, stop: Stop, report: FailureReport) -> WorkflowError {
        let report = Box::new(report);
        let workflow = self.def.name;
        let run_id = self.run.run_id().clone();
        let name = |step: StepIndex| self.def.steps[step as usize].name;
        match stop {
            Stop::StepFailed {
                step,
                item,
                attempts,
                error,
            } => WorkflowError::StepFailed {
                workflow,
                run_id,
                step: name(step),
                item,
                attempts,
                error,
                report,
            },
            Stop::NoSignals { step } => WorkflowError::StepFailed {
                workflow,
                run_id,
                step: name(step),
                item: None,
                attempts: 0,
                error: StepError::permanent(StepError::msg(format!(
                    "step `{}` waits for a signal, and a run started with `run` has no handle to send it: start it with `engine.start(..)` and send it with `RunHandle::signal`",
                    name(step)
                ))),
                report,
            },
            Stop::LoopLimit {
                step,
                max_passes,
            } => WorkflowError::LoopLimitExceeded {
                workflow,
                run_id,
                step: name(step),
                max_passes,
                report,
            },
            Stop::Cancelled => WorkflowError::Cancelled {
                workflow,
                run_id,
                report,
            },
            Stop::Deadline(deadline) => WorkflowError::DeadlineExceeded {
                workflow,
                run_id,
                deadline,
                report,
            },
            // The error the run stopped with before a restart, as it was.
            Stop::Resumed(cause) => match StoredError::decode(&cause) {
                Some(stored) => stored.into_error(self.def, &run_id).with_report(*report),
                None => WorkflowError::Stopped {
                    workflow,
                    run_id,
                    cause,
                    report,
                },
            },
            Stop::Store(error) => WorkflowError::Store {
                workflow,
                run_id,
                error,
            },
            Stop::Crash(step) => WorkflowError::Interrupted {
                workflow,
                run_id,
                step: name(step),
            },
            // Never errors: `drive_durable` turns these into `Driven::Park` / `Driven::Fenced`.
            Stop::Park { .. } | Stop::Fenced => WorkflowError::Interrupted {
                workflow,
                run_id,
                step: "",
            },
        }
    }

    /// Drops every in-flight attempt; returns the names of the steps that were running.
    fn cancel_in_flight(&mut self) -> Vec<&'static str> {
        self.in_flight.clear();
        self.steps
            .iter()
            .zip(self.def.steps)
            .filter(|(st, _)| matches!(st.status, Status::Running | Status::Signalled))
            .map(|(_, def)| def.name)
            .collect()
    }

    /// Runs the compensations of the completed saga steps, latest completion first. Each is
    /// retried by its own policy; one that still fails is recorded and the others still run.
    /// Each finished compensation is journaled, so a restart does not repeat it.
    pub(super) async fn compensate(&mut self) -> Result<Vec<CompensationRecord>, StoreError> {
        let mut records = Vec::new();
        while let Some((step, completion)) = self.sagas.pop() {
            if self.was_compensated(step, completion) {
                continue;
            }
            records.extend(self.compensate_one(step, completion).await?);
        }
        Ok(records)
    }

    /// Runs the compensation of completion `completion` of saga step `step` (with its retry
    /// policy) and journals that it finished; `None` for a step without one.
    pub(super) async fn compensate_one(
        &mut self,
        step: StepIndex,
        completion: usize,
    ) -> Result<Option<CompensationRecord>, StoreError> {
        let def = &self.def.steps[step as usize];
        if def.child.is_some()
            || self
                .rare()
                .is_some_and(|rare| rare.child_undos.contains_key(&(step, completion)))
        {
            return self.undo_child(step, completion).await;
        }
        let Some(compensation) = def.compensation else {
            return Ok(None);
        };
        let mut attempt = 1;
        let error = loop {
            let plan = self.plan.as_deref();
            let info = StartInfo {
                run: &self.run,
                attempt,
                pass: 1,
                signal: None,
                plan,
                events: None,
            };
            let workflow: &'a W = self.workflow;
            let future = if plan.is_some_and(|p| p.compensation_fails(step)) {
                crate::testing::fault_future(
                    compensation.name,
                    attempt,
                    crate::testing::Fault::FailTimes(u32::MAX),
                )
            } else {
                match workflow.__compensate(&mut self.state, step, completion, info) {
                    Some(future) => future,
                    None => {
                        break Some(StepError::msg("internal error: compensation input missing"))
                    }
                }
            };
            let span = tracing::info_span!(
                "compensation",
                step = def.name,
                compensation = compensation.name,
                attempt
            );
            let tag = Tag {
                step,
                item: completion,
                generation: 0,
                attempt,
            };
            let task = Task::attempt(tag, Some(span), future, compensation.policy.timeout);
            match task.await.1 {
                Outcome::Attempted(Err(error))
                    if !error.is_permanent() && attempt <= compensation.policy.retries =>
                {
                    tracing::warn!(step = def.name, compensation = compensation.name, attempt, %error, "compensation failed; retrying");
                    tokio::time::sleep(compensation.policy.backoff.pause(attempt)).await;
                    attempt += 1;
                }
                Outcome::Attempted(Err(error)) => {
                    tracing::error!(step = def.name, compensation = compensation.name, attempt, %error, "compensation failed for good");
                    break Some(error);
                }
                Outcome::Attempted(Ok(()))
                | Outcome::RetryDue
                | Outcome::SignalReady(_)
                | Outcome::Committed(_) => break None,
            }
        };
        let record = CompensationRecord {
            step: def.name,
            compensation: compensation.name,
            attempts: attempt,
            error,
        };
        self.compensation_ended(step, completion, record)
            .await
            .map(Some)
    }

    /// Journals that the compensation of completion `completion` of `step` ended as `record`
    /// says (so a restart does not repeat it), and reports it.
    pub(super) async fn compensation_ended(
        &mut self,
        step: StepIndex,
        completion: usize,
        record: CompensationRecord,
    ) -> Result<CompensationRecord, StoreError> {
        if let Some(journal) = self.journal.as_deref_mut() {
            let event = JournalEvent::Compensated {
                step: record.step.to_owned(),
                completion: completion as u64,
                error: record.error.as_ref().map(|e| e.to_string()),
            };
            journal.record(event).await?;
        }
        self.rare_mut().compensated.insert((step, completion));
        let failed = record.error.is_some();
        self.emit(|| RunEvent::Compensated { step, failed });
        Ok(record)
    }
}
