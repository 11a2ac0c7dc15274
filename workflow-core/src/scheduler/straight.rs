//! Straight-line dispatch. While exactly one step is runnable, nothing else is in flight and
//! the run keeps no per-step record (no journal, events, history, test plan, tracing,
//! cancellation or deadline), each step is started and awaited in place: one call into the
//! generated code, one poll and one delivery per step, with no task around its future. Any
//! other case (items, signals, timeouts, child workflows, a failed attempt, parallel steps)
//! goes back to the general loop, which keeps every guarantee.

use super::{Driver, Status, Stop};
use crate::definition::StepIndex;
use crate::options::RunOptions;
use crate::task::poll_attempt;
use crate::workflow::Workflow;

impl<W: Workflow + Sync> Driver<'_, '_, W> {
    /// True when the run keeps no per-step record and nothing can interrupt a step from
    /// outside it (checked once per drive).
    pub(super) fn quiet(&self, options: &RunOptions) -> bool {
        self.journal.is_none()
            && self.events.is_none()
            && self.recorder.is_none()
            && self.plan.is_none()
            && !self.spans.recording()
            && !tracing::dispatcher::has_been_set()
            && options.cancel.is_none()
            && options.deadline.is_none()
            && options.fence.is_none()
    }

    /// True for a ready step that needs nothing but its future: no items, signal, timeout or
    /// child workflow.
    fn straight(&self, step: StepIndex) -> bool {
        let def = &self.def.steps[step as usize];
        self.steps[step as usize].status == Status::Ready
            && def.for_each.is_none()
            && def.signal.is_none()
            && def.child.is_none()
            && self.policy(step).timeout.is_none()
    }

    /// Runs the single runnable step in place, then each single one after it; returns when
    /// the general loop must take over.
    pub(super) async fn run_straight(&mut self) -> Result<(), Stop> {
        while let [step] = self.ready[..] {
            if !self.straight(step) || !self.in_flight.is_empty() {
                return Ok(());
            }
            self.ready.clear();
            self.mark_running(step);
            let (tag, mut future) = self.start_attempt(step, 0, 1)?;
            match std::future::poll_fn(|cx| poll_attempt(&mut future, cx)).await {
                Ok(out) => {
                    drop(future);
                    // What `committed` does, for a plain step of a quiet run (no items, no
                    // test plan): one delivery, without its two checks on the hot path.
                    self.deliver(step, None, out)?;
                    if !self.lost_sagas.is_empty() {
                        self.compensate_losers().await.map_err(Stop::Store)?;
                    }
                }
                // Retries, fallbacks and the run's stop, as for any attempt.
                Err(error) => self.failed(tag, error)?,
            }
        }
        Ok(())
    }
}
