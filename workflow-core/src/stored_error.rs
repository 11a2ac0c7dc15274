//! A run's error as a store keeps it: [`StoredError`], one typed enum (JSON), written with a
//! failed or cancelled run and in the journal's `Stopped` event, and read back into the same
//! [`WorkflowError`] in any process: the failed step, its attempts and cause, what was
//! cancelled and how every saga step was compensated. (The cause's Rust type does not cross
//! a process: its message does.)

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::definition::Definition;
use crate::error::{StepError, StepErrorKind, WorkflowError};
use crate::report::{CompensationRecord, FailureReport};
use crate::run_id::RunId;

/// See the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum StoredError {
    StepFailed {
        step: String,
        item: Option<usize>,
        attempts: u32,
        error: StoredStepError,
        report: StoredReport,
    },
    LoopLimitExceeded {
        step: String,
        max_passes: u32,
        report: StoredReport,
    },
    Cancelled {
        report: StoredReport,
    },
    DeadlineExceeded {
        deadline_ms: u64,
        report: StoredReport,
    },
    NoOutput {
        steps: Vec<String>,
    },
    /// Any other error: its message without the workflow and run prefix.
    Other {
        message: String,
        report: StoredReport,
    },
}

/// A [`StepError`] as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredStepError {
    /// `error`, `message`, `panic` or `timeout`.
    kind: String,
    message: String,
    permanent: bool,
    timeout_ms: Option<u64>,
}

/// A [`FailureReport`] as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredReport {
    cancelled: Vec<String>,
    compensations: Vec<StoredCompensation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StoredCompensation {
    step: String,
    compensation: String,
    attempts: u32,
    error: Option<StoredStepError>,
}

impl StoredError {
    /// The stored form of `error`.
    pub fn from_error(error: &WorkflowError) -> Self {
        let report = error
            .report()
            .map(StoredReport::from_report)
            .unwrap_or_default();
        match error {
            WorkflowError::StepFailed {
                step,
                item,
                attempts,
                error,
                ..
            } => StoredError::StepFailed {
                step: (*step).to_owned(),
                item: *item,
                attempts: *attempts,
                error: StoredStepError::from_error(error),
                report,
            },
            WorkflowError::LoopLimitExceeded {
                step, max_passes, ..
            } => StoredError::LoopLimitExceeded {
                step: (*step).to_owned(),
                max_passes: *max_passes,
                report,
            },
            WorkflowError::Cancelled { .. } => StoredError::Cancelled { report },
            WorkflowError::DeadlineExceeded { deadline, .. } => StoredError::DeadlineExceeded {
                deadline_ms: deadline.as_millis().min(u64::MAX as u128) as u64,
                report,
            },
            WorkflowError::NoOutput { steps, .. } => StoredError::NoOutput {
                steps: steps.iter().map(|s| (*s).to_owned()).collect(),
            },
            WorkflowError::Stopped { cause, .. } => match StoredError::decode(cause) {
                Some(stored) => stored.with_report(report),
                None => StoredError::Other {
                    message: cause.clone(),
                    report,
                },
            },
            other => StoredError::Other {
                message: other.cause(),
                report,
            },
        }
    }

    /// The JSON text stored.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{\"kind\":\"other\"}"))
    }

    /// Reads stored text; `None` for text that is not a stored error (a store written by an
    /// older version kept the message only).
    pub fn decode(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    fn with_report(mut self, new: StoredReport) -> Self {
        match &mut self {
            StoredError::StepFailed { report, .. }
            | StoredError::LoopLimitExceeded { report, .. }
            | StoredError::Cancelled { report }
            | StoredError::DeadlineExceeded { report, .. }
            | StoredError::Other { report, .. } => *report = new,
            StoredError::NoOutput { .. } => {}
        }
        self
    }

    /// The error of run `run_id` of the workflow defined by `def`. Step names are those of
    /// `def`; a name it does not have (the run finished under another definition) makes the
    /// error an [`WorkflowError::Stopped`] with the whole message.
    pub fn into_error(self, def: &'static Definition, run_id: &RunId) -> WorkflowError {
        let workflow = def.name;
        let run_id = run_id.clone();
        let message = || self.message(def);
        let step = |name: &str| def.steps.iter().find(|s| s.name == name).map(|s| s.name);
        match &self {
            StoredError::StepFailed {
                step: name,
                item,
                attempts,
                error,
                report,
            } => match (step(name), report.to_report(def)) {
                (Some(step), Some(report)) => WorkflowError::StepFailed {
                    workflow,
                    run_id,
                    step,
                    item: *item,
                    attempts: *attempts,
                    error: error.to_error(),
                    report: Box::new(report),
                },
                _ => stopped(workflow, run_id, message()),
            },
            StoredError::LoopLimitExceeded {
                step: name,
                max_passes,
                report,
            } => match (step(name), report.to_report(def)) {
                (Some(step), Some(report)) => WorkflowError::LoopLimitExceeded {
                    workflow,
                    run_id,
                    step,
                    max_passes: *max_passes,
                    report: Box::new(report),
                },
                _ => stopped(workflow, run_id, message()),
            },
            StoredError::Cancelled { report } => match report.to_report(def) {
                Some(report) => WorkflowError::Cancelled {
                    workflow,
                    run_id,
                    report: Box::new(report),
                },
                None => stopped(workflow, run_id, message()),
            },
            StoredError::DeadlineExceeded {
                deadline_ms,
                report,
            } => match report.to_report(def) {
                Some(report) => WorkflowError::DeadlineExceeded {
                    workflow,
                    run_id,
                    deadline: Duration::from_millis(*deadline_ms),
                    report: Box::new(report),
                },
                None => stopped(workflow, run_id, message()),
            },
            StoredError::NoOutput { steps } => {
                match steps.iter().map(|s| step(s)).collect::<Option<Vec<_>>>() {
                    Some(steps) => WorkflowError::NoOutput {
                        workflow,
                        run_id,
                        steps,
                    },
                    None => stopped(workflow, run_id, message()),
                }
            }
            StoredError::Other { message, report } => WorkflowError::Stopped {
                workflow,
                run_id,
                cause: message.clone(),
                report: Box::new(report.to_report(def).unwrap_or_default()),
            },
        }
    }

    /// A one-line message, for an error that cannot be rebuilt under `def`.
    pub fn message(&self, def: &'static Definition) -> String {
        match self {
            StoredError::StepFailed {
                step,
                attempts,
                error,
                ..
            } => format!(
                "step `{step}` failed after {attempts} attempt(s): {}",
                error.to_error()
            ),
            StoredError::LoopLimitExceeded {
                step, max_passes, ..
            } => format!(
                "loop at step `{step}` would start pass {} of at most max_passes = {max_passes}",
                max_passes + 1
            ),
            StoredError::Cancelled { .. } => "cancelled".into(),
            StoredError::DeadlineExceeded { deadline_ms, .. } => {
                format!("deadline of {deadline_ms} ms exceeded")
            }
            StoredError::NoOutput { steps } => format!(
                "finished without output: none of the output steps ({}) ran (of `{}`)",
                steps.join(", "),
                def.name
            ),
            StoredError::Other { message, .. } => message.clone(),
        }
    }
}

fn stopped(workflow: &'static str, run_id: RunId, cause: String) -> WorkflowError {
    WorkflowError::Stopped {
        workflow,
        run_id,
        cause,
        report: Box::default(),
    }
}

impl StoredStepError {
    fn from_error(error: &StepError) -> Self {
        let (kind, message, timeout_ms) = match &error.kind {
            StepErrorKind::Error(e) => ("error", e.to_string(), None),
            #[cfg(feature = "anyhow")]
            StepErrorKind::Anyhow(e) => ("error", format!("{e:#}"), None),
            StepErrorKind::Message(m) => ("message", m.clone(), None),
            StepErrorKind::Panic(m) => ("panic", m.clone(), None),
            StepErrorKind::TimedOut(d) => (
                "timeout",
                String::new(),
                Some(d.as_millis().min(u64::MAX as u128) as u64),
            ),
        };
        StoredStepError {
            kind: kind.to_owned(),
            message,
            permanent: error.permanent,
            timeout_ms,
        }
    }

    fn to_error(&self) -> StepError {
        let error = match (self.kind.as_str(), self.timeout_ms) {
            ("panic", _) => StepError::panicked(self.message.clone()),
            ("timeout", Some(ms)) => StepError::timed_out(Duration::from_millis(ms)),
            _ => StepError::msg(self.message.clone()),
        };
        if self.permanent {
            StepError::permanent(error)
        } else {
            error
        }
    }
}

impl StoredReport {
    fn from_report(report: &FailureReport) -> Self {
        StoredReport {
            cancelled: report.cancelled.iter().map(|s| (*s).to_owned()).collect(),
            compensations: report
                .compensations
                .iter()
                .map(|c| StoredCompensation {
                    step: c.step.to_owned(),
                    compensation: c.compensation.to_owned(),
                    attempts: c.attempts,
                    error: c.error.as_ref().map(StoredStepError::from_error),
                })
                .collect(),
        }
    }

    /// The report with `def`'s names; `None` if a name is not in `def`.
    fn to_report(&self, def: &'static Definition) -> Option<FailureReport> {
        let step = |name: &str| def.steps.iter().find(|s| s.name == name);
        let cancelled = self
            .cancelled
            .iter()
            .map(|s| step(s).map(|s| s.name))
            .collect::<Option<Vec<_>>>()?;
        let compensations = self
            .compensations
            .iter()
            .map(|c| {
                let def = step(&c.step)?;
                // A saga step's compensation method, or a child step's child workflow.
                let compensation = match (def.compensation, def.child) {
                    (Some(k), _) if k.name == c.compensation => k.name,
                    (_, Some(child)) if (child.definition)().name == c.compensation => {
                        (child.definition)().name
                    }
                    _ => return None,
                };
                Some(CompensationRecord {
                    step: def.name,
                    compensation,
                    attempts: c.attempts,
                    error: c.error.as_ref().map(StoredStepError::to_error),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(FailureReport {
            cancelled,
            compensations,
        })
    }
}
