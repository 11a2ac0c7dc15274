//! Straight-line dispatch. While exactly one step is runnable, nothing else is in flight and
//! the run keeps no per-step record but its history (no journal, events or test plan) and
//! nothing can interrupt it (no cancellation or deadline), steps are started and awaited in
//! place (their starts and completions in the history as on the general loop), with
//! no task around their future: a chain of plain steps (each step's only edge into a step with
//! no other upstream: see [`StepFlow`](crate::step_flow::StepFlow)) runs as the generated
//! code's straight-line segment, one future and one poll for the whole chain, which asks the
//! driver at each chain edge whether to go on. Any other case (items, signals, timeouts, child
//! workflows, a failed attempt, parallel steps) goes back to the general loop, which keeps
//! every guarantee.
//!
//! Spans and metrics are kept as on the general loop: each step's OpenTelemetry span opens and
//! closes at its chain edges; under a `tracing` subscriber that records `step` spans each step
//! runs alone (no chain), inside its span.

use super::{trace, Driver, Status, StepState, Stop};
use crate::definition::StepIndex;
use crate::options::RunOptions;
use crate::task::{poll_attempt, Tag};
use crate::workflow::{StartInfo, Workflow};

impl<'a, W: Workflow + Sync> Driver<'a, '_, W> {
    /// True when the run keeps no per-step record but its history (no journal, events or
    /// test plan) and nothing can interrupt a step from outside it (checked once per drive).
    pub(super) fn quiet(&self, options: &RunOptions) -> bool {
        self.journal.is_none()
            && self.events.is_none()
            && self.plan.is_none()
            && options.cancel.is_none()
            && options.deadline.is_none()
            && options.fence.is_none()
    }

    /// True for a step that needs nothing but its future: no items, signal, timeout (declared
    /// or set by the run) or child workflow.
    fn straight(&self, step: StepIndex) -> bool {
        self.flows.steps[step as usize].plain() && self.timeout(step).is_none()
    }

    /// Runs the single runnable step in place, then each single one after it; returns when
    /// the general loop must take over.
    pub(super) async fn run_straight(&mut self) -> Result<(), Stop> {
        while let [step] = self.ready[..] {
            let ready = self.steps[step as usize].status == Status::Ready;
            if !ready || !self.straight(step) || !self.in_flight.is_empty() {
                return Ok(());
            }
            self.ready.clear();
            self.run_chain(step).await?;
        }
        Ok(())
    }

    /// Runs `step` (ready and straight) and, along chain edges, each straight step after it,
    /// until a step's completion is not a chain edge into a straight step: that completion
    /// goes through [`Driver::complete`] (or, for a chain edge, leaves the next step ready).
    ///
    /// Each turn runs the segment from `step`: its first attempt, then along chain edges each
    /// straight step after it that the generated code reaches in place, in one future awaited
    /// in place (no box, see [`Workflow::__run_segment`]); `step` becomes the last step it
    /// started, whose result comes back undelivered. The steps' records are kept as the
    /// general loop keeps them (`mark_running` and `start_attempt`, then the completion).
    async fn run_chain(&mut self, mut step: StepIndex) -> Result<(), Stop> {
        // Run overrides may set a step's timeout: then each step goes through `straight`.
        let overridden = self.tunables.is_some();
        loop {
            start_in_place(&mut self.steps[step as usize]);
            if let Some(recorder) = self.recorder.as_deref_mut() {
                recorder.started(step as usize);
            }
            // Under a `tracing` subscriber that records step spans, each step runs alone,
            // inside its own span. Whether it records depends on the span's metadata only (a
            // subscriber's `enabled` sees no field values), the same for every step while the
            // filter stays as it is: when the first step's span is off, the whole chain runs
            // as one segment (a filter reloaded meanwhile applies from the next chain on).
            let span = trace::step_span(self.def, first_attempt_id(step));
            let in_place = !overridden && span.is_none();
            self.spans.attempt(self.def, first_attempt_id(step));
            let info = StartInfo {
                run: &self.run,
                attempt: 1,
                pass: self.steps[step as usize].launches,
                signal: None,
                plan: None,
                events: None,
            };
            let mut last = step;
            let result = {
                let (steps, flows, run) = (&mut self.steps, self.flows, &*self.run);
                let (spans, def) = (&mut self.spans, self.def);
                let mut recorder = self.recorder.as_deref_mut();
                let mut advance = |from: StepIndex, to: StepIndex| {
                    let goes_on = in_place
                        && flows.steps[from as usize].next == Some(to)
                        && flows.steps[to as usize].plain()
                        && steps[to as usize].status == Status::Waiting
                        && !run.children.any_undo();
                    if goes_on {
                        spans.attempt_end(first_attempt_id(from), true);
                        hand_over(steps, from, to);
                        start_in_place(&mut steps[to as usize]);
                        if let Some(recorder) = recorder.as_deref_mut() {
                            recorder.handed_over(def, from as usize, to as usize);
                        }
                        spans.attempt(def, first_attempt_id(to));
                        last = to;
                    }
                    goes_on
                };
                let future = self
                    .workflow
                    .__run_segment(&mut self.state, step, info, &mut advance);
                let mut future = std::pin::pin!(future);
                std::future::poll_fn(|cx| {
                    let _entered = span.as_ref().map(tracing::Span::enter);
                    poll_attempt(future.as_mut(), cx)
                })
                .await
            };
            step = last;
            self.spans
                .attempt_end(first_attempt_id(step), result.is_ok());
            let out = match result {
                Ok(out) => out,
                // Retries, fallbacks and the run's stop, as for any attempt.
                Err(error) => return self.failed(first_attempt(&self.steps, step), error),
            };
            let arm = W::__deliver(&mut self.state, out);
            let next = self.flows.steps[step as usize].next;
            // A chain edge, when no child run of a step body left an undo to keep: what
            // `complete` does for it, without reading the definitions.
            let Some(next) = next.filter(|_| !self.run.children.any_undo()) else {
                self.complete(step, arm)?;
                if !self.lost_sagas.is_empty() {
                    self.compensate_losers().await.map_err(Stop::Store)?;
                }
                return Ok(());
            };
            let handed = hand_over(&mut self.steps, step, next);
            if let Some(recorder) = self.recorder.as_deref_mut() {
                recorder.completed(self.def, step as usize);
            }
            if !handed {
                return Ok(()); // the macro's graphs never get here: a sole upstream delivers once
            }
            self.steps[next as usize].status = Status::Ready;
            if !self.straight(next) {
                self.ready.push(next);
                return Ok(());
            }
            step = next;
        }
    }
}

/// What [`Driver::complete`] does for the chain edge `from` -> `to` (but for the history):
/// `from` is done and its output delivered to `to`; false (nothing delivered) when `to` is
/// not waiting for it.
fn hand_over(steps: &mut [StepState], from: StepIndex, to: StepIndex) -> bool {
    let done = &mut steps[from as usize];
    done.status = Status::Done;
    done.completions += 1;
    let target = &mut steps[to as usize];
    if target.status != Status::Waiting {
        return false;
    }
    target.delivered += 1;
    true
}

/// `step`'s first attempt, the only one the straight-line path makes, as its spans know it.
fn first_attempt_id(step: StepIndex) -> trace::Attempt {
    (step, 0, 1)
}

/// The tag of `step`'s first attempt (see [`first_attempt_id`]).
fn first_attempt(steps: &[StepState], step: StepIndex) -> Tag {
    let (step, item, attempt) = first_attempt_id(step);
    Tag {
        step,
        item,
        generation: steps[step as usize].generation,
        attempt,
    }
}

/// `mark_running` and `start_attempt` of a straight step's first attempt in a quiet run (but
/// for the history): no signal, test plan or fault to look up.
fn start_in_place(step: &mut StepState) {
    step.status = Status::Running;
    step.launches += 1;
    step.attempts += 1;
}
