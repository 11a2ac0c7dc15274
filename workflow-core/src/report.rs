//! What happened after a run stopped early: cancelled steps and compensations.

use std::fmt;

use crate::error::StepError;

/// How one completed saga step was compensated.
#[derive(Debug, Clone)]
pub struct CompensationRecord {
    /// The saga step that was undone.
    pub step: &'static str,
    /// Its compensation method.
    pub compensation: &'static str,
    /// Attempts made.
    pub attempts: u32,
    /// `None` when the compensation succeeded; else its last error.
    pub error: Option<StepError>,
}

/// Attached to every [`crate::WorkflowError`] that stopped a run early.
#[derive(Debug, Clone, Default)]
pub struct FailureReport {
    /// Steps in flight when the run stopped; their futures were dropped.
    pub cancelled: Vec<&'static str>,
    /// Compensations in the order they ran: reverse completion order of the saga steps.
    pub compensations: Vec<CompensationRecord>,
}

impl FailureReport {
    /// The saga steps whose compensation succeeded, in the order they were compensated.
    pub fn compensated(&self) -> Vec<&'static str> {
        self.compensations
            .iter()
            .filter(|c| c.error.is_none())
            .map(|c| c.step)
            .collect()
    }

    /// The compensations that still failed after their retries.
    pub fn failed_compensations(&self) -> impl Iterator<Item = &CompensationRecord> {
        self.compensations.iter().filter(|c| c.error.is_some())
    }
}

/// `; cancelled: `a`; compensated: `b` (by `undo_b`), ...; compensation `undo_c` of `c` failed ...`
impl fmt::Display for FailureReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.cancelled.is_empty() {
            let names: Vec<String> = self.cancelled.iter().map(|s| format!("`{s}`")).collect();
            write!(f, "; cancelled: {}", names.join(", "))?;
        }
        let done: Vec<String> = self
            .compensations
            .iter()
            .filter(|c| c.error.is_none())
            .map(|c| format!("`{}` (by `{}`)", c.step, c.compensation))
            .collect();
        if !done.is_empty() {
            write!(f, "; compensated in order: {}", done.join(", "))?;
        }
        for failed in self.failed_compensations() {
            if let Some(error) = &failed.error {
                write!(
                    f,
                    "; compensation `{}` of `{}` FAILED after {} attempt(s): {error}",
                    failed.compensation, failed.step, failed.attempts
                )?;
            }
        }
        Ok(())
    }
}
