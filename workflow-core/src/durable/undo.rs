//! Undoing a completed run as a unit: a child workflow whose parent compensates.

use std::sync::Arc;

use super::journal::decode_journal;
use super::{store_error, DurableEngine};
use crate::child::Children;
use crate::context::{RunInfo, RunLimits};
use crate::error::WorkflowError;
use crate::options::{CancellationToken, RunOptions};
use crate::report::CompensationRecord;
use crate::run_id::RunId;
use crate::scheduler::{drive_durable, Drive, Driven};
use crate::store::{RunRecord, StoreError};
use crate::workflow::Durable;

impl DurableEngine {
    /// Runs the compensations of completed run `run_id`, latest first: its journal restores
    /// what its saga steps kept, then it stops as if cancelled. Nothing is written to the run,
    /// which stays completed; the parent that asked journals the undo (so a crash in the
    /// middle repeats the child's compensations: they run at least once).
    pub(crate) async fn undo_completed<W: Durable + Sync>(
        &self,
        workflow: &W,
        run_id: &RunId,
    ) -> Result<Vec<CompensationRecord>, WorkflowError> {
        let record = self
            .status(run_id)
            .await
            .map_err(store_error::<W>(run_id))?;
        let input = decode_input::<W>(run_id, &record).map_err(store_error::<W>(run_id))?;
        let records = self
            .journal(run_id)
            .await
            .map_err(store_error::<W>(run_id))?;
        let replay = decode_journal::<W>(run_id, records).map_err(store_error::<W>(run_id))?;
        let cancelled = CancellationToken::new();
        cancelled.cancel();
        let options = RunOptions::default().cancel_token(cancelled);
        let info = Arc::new(RunInfo {
            workflow: W::definition().name,
            id: run_id.clone().into(),
            engine: Some(self.clone()),
            limits: RunLimits::default(),
            children: Children::durable(W::__child),
            trace: Default::default(),
        });
        let mode = Drive {
            options: &options,
            journal: None,
            replay,
        };
        match drive_durable(workflow, input, info, mode, None).await {
            Driven::Finished(Err(error)) => match error.report() {
                Some(report) => Ok(report.compensations.clone()),
                None => Err(error),
            },
            // Cancelled before it could do anything else: nothing more to undo.
            Driven::Finished(Ok(_)) | Driven::Park { .. } | Driven::Fenced { .. } => Ok(Vec::new()),
        }
    }
}

/// A stored run's input.
pub(super) fn decode_input<W: Durable>(
    run_id: &RunId,
    run: &RunRecord,
) -> Result<W::Input, StoreError> {
    W::__decode_input(&run.input).map_err(|e| StoreError::Corrupt {
        run_id: run_id.clone(),
        seq: None,
        detail: format!("the run's input does not decode: {e}"),
    })
}
