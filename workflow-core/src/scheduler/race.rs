//! `after = first(a, b)`: the step fires once, with the first racer's output, and the other
//! racers lose. A loser's branch (the racer and the steps upstream of it that lead only to
//! racers) is cancelled: its in-flight steps are dropped, its waiting steps never start, and
//! its completed saga steps are compensated, latest first, while the run goes on.

use std::collections::HashSet;

use super::{Driver, Status};
use crate::definition::StepIndex;
use crate::events::RunEvent;
use crate::store::StoreError;
use crate::workflow::Workflow;

impl<W: Workflow + Sync> Driver<'_, '_, W> {
    /// The `first(..)` step `target` fired with `winner`'s output: cancel the losers. Out of
    /// line (see `next_iteration`).
    #[cold]
    pub(super) fn cancel_losers(&mut self, target: StepIndex, winner: StepIndex) {
        let branch = self.losing_branch(target, winner);
        for &step in &branch {
            let st = &mut self.steps[step as usize];
            let was = st.status;
            if matches!(
                was,
                Status::Waiting | Status::Ready | Status::Running | Status::Signalled
            ) {
                st.status = Status::Cancelled;
                st.generation += 1;
                if matches!(was, Status::Running | Status::Signalled) {
                    self.emit(|| RunEvent::StepCancelled { step });
                }
            }
        }
        self.ready.retain(|s| !branch.contains(s));
        if let Some(rare) = self.rare.as_deref_mut() {
            rare.parked.retain(|(s, _)| !branch.contains(s));
        }
        self.in_flight.retain(|tag| !branch.contains(&tag.step));
        let (lost, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.sagas)
            .into_iter()
            .partition(|(step, _)| branch.contains(step));
        self.sagas = kept;
        self.lost_sagas.extend(lost);
    }

    /// The racers of `target` other than `winner`, and every step whose outputs lead only
    /// into them.
    fn losing_branch(&self, target: StepIndex, winner: StepIndex) -> HashSet<StepIndex> {
        let mut branch: HashSet<StepIndex> = self.def.steps[target as usize]
            .upstream
            .iter()
            .copied()
            .filter(|&s| s != winner)
            .collect();
        loop {
            let more: Vec<StepIndex> = (0..self.def.steps.len() as StepIndex)
                .filter(|s| !branch.contains(s) && *s != target)
                .filter(|&s| {
                    let out = self.def.steps[s as usize].downstream;
                    !out.is_empty() && out.iter().all(|e| branch.contains(&e.to))
                })
                .collect();
            if more.is_empty() {
                return branch;
            }
            branch.extend(more);
        }
    }

    /// Compensates the completed saga steps of lost branches, latest completion first. The
    /// compensations' future is boxed, made only when there is one to run: inline, it would
    /// make the future of every run several hundred bytes larger, and each run's future is
    /// moved (copied) when it starts. The hot paths check `lost_sagas` before calling it.
    pub(super) async fn compensate_losers(&mut self) -> Result<(), StoreError> {
        if self.lost_sagas.is_empty() {
            return Ok(());
        }
        Box::pin(self.compensate_lost_sagas()).await
    }

    async fn compensate_lost_sagas(&mut self) -> Result<(), StoreError> {
        while let Some((step, completion)) = self.lost_sagas.pop() {
            if !self.was_compensated(step, completion) {
                self.compensate_one(step, completion).await?;
            }
        }
        Ok(())
    }
}
