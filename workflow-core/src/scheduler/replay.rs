//! Resuming a run: its journal is replayed through the same scheduling logic, in journal
//! order, without running any step. Replayed outputs go through the generated state exactly
//! like live ones, so branches, joins (`any` picks the same winner: the first journaled) and
//! loops take the same path; what was in flight at the crash then runs again.

use super::{Driver, Status, Stop};
use crate::definition::StepIndex;
use crate::journal::{Replay, Replayed};
use crate::store::StoreError;
use crate::workflow::{StartInfo, Workflow};

impl<W: Workflow + Sync> Driver<'_, '_, W> {
    /// Replays journal records; returns the stop cause if the run had stopped before.
    pub(super) fn replay(&mut self, records: Replay<W::__Out>) -> Result<Option<String>, Stop> {
        let mut stopped = None;
        if let Some((first, _)) = records.first() {
            self.begin_ready_for_each(*first)?;
        }
        for (seq, record) in records {
            match record {
                Replayed::Output { step, item, out } => {
                    if let Some(rare) = self.rare.as_deref_mut() {
                        rare.pending_retries.remove(&(step, item.unwrap_or(0)));
                    }
                    self.replay_launch(step, seq)?;
                    if let Some(item) = item {
                        self.rare_mut()
                            .replayed_items
                            .entry(step)
                            .or_default()
                            .insert(item);
                        self.discard_inputs(step, item);
                    }
                    if let Some(rec) = self.recorder.as_deref_mut() {
                        rec.restored(self.def, step as usize);
                    }
                    self.deliver(step, item, out)?;
                    self.begin_ready_for_each(seq)?;
                }
                Replayed::Signal { step, outcome } => {
                    self.rare_mut().signals.insert(step, outcome);
                }
                Replayed::WaitStarted { step, at } => {
                    self.rare_mut().wait_started.insert(step, at);
                }
                Replayed::RetryScheduled {
                    step,
                    item,
                    attempt,
                    due,
                } => {
                    self.rare_mut()
                        .pending_retries
                        .insert((step, item), (attempt, due));
                }
                Replayed::Stopped { cause } => stopped = Some(cause),
                Replayed::Compensated { step, completion } => {
                    self.rare_mut().compensated.insert((step, completion));
                }
            }
        }
        Ok(stopped)
    }

    /// Marks a replayed step running, as if launched, taking its inputs.
    fn replay_launch(&mut self, step: StepIndex, seq: u64) -> Result<(), Stop> {
        let index = step as usize;
        let for_each = self.def.steps[index].for_each.is_some();
        match self.steps[index].status {
            Status::Running if for_each => Ok(()),
            Status::Ready | Status::Signalled => {
                let st = &mut self.steps[index];
                st.status = Status::Running;
                st.launches += 1;
                if for_each {
                    self.begin_items(step)?;
                } else {
                    self.discard_inputs(step, 0);
                }
                Ok(())
            }
            _ => Err(Stop::Store(StoreError::Corrupt {
                run_id: self.run.run_id().clone(),
                seq: Some(seq),
                detail: format!(
                    "the journal does not fit the graph: step `{}` completed but was never ready",
                    self.def.steps[index].name
                ),
            })),
        }
    }

    /// Begins the `for_each` steps a replayed output made ready, as their launch did right
    /// then: one over an empty list completed at once, with no record of its own, and must
    /// complete at the same point of the replay (an `any` join it feeds picks the same winner).
    fn begin_ready_for_each(&mut self, seq: u64) -> Result<(), Stop> {
        let mut i = 0;
        while let Some(&step) = self.ready.get(i) {
            i += 1;
            let index = step as usize;
            if self.def.steps[index].for_each.is_none() || self.steps[index].status != Status::Ready
            {
                continue;
            }
            self.replay_launch(step, seq)?;
        }
        Ok(())
    }

    /// Takes a replayed invocation's inputs out of the state, as its launch would have.
    fn discard_inputs(&mut self, step: StepIndex, item: usize) {
        let signal = self.signal_for(step).ok().flatten();
        let info = StartInfo {
            run: &self.run,
            attempt: 1,
            pass: 1,
            signal,
            plan: None,
            events: None,
        };
        drop(self.workflow.__start(&mut self.state, step, item, info));
    }

    /// After a replay, launches the items of `for_each` steps that were in flight.
    pub(super) fn resume_items(&mut self) {
        for index in 0..self.steps.len() {
            if self.def.steps[index].for_each.is_none() {
                continue;
            }
            let progress = self.items.get(index).copied().unwrap_or_default();
            if self.steps[index].status != Status::Running || progress.next > 0 {
                continue;
            }
            let remaining = progress.total - progress.done;
            let limit = self
                .concurrency(index as StepIndex)
                .map_or(remaining, |c| (c as usize).min(remaining));
            for _ in 0..limit {
                if self.launch_next_item(index as StepIndex).is_err() {
                    break;
                }
            }
        }
    }
}
