//! The run's OpenTelemetry spans (feature `otel`, see `crate::otel`): one per drive of the run
//! and one per step attempt (without the feature these hooks do nothing and cost nothing); and
//! each attempt's `tracing` span, made only under a subscriber.

use super::{Driven, Driver};
use crate::definition::{Definition, StepIndex};
use crate::task::Tag;
use crate::workflow::Workflow;

/// What the driver keeps of its spans.
#[derive(Default)]
pub(super) struct Spans {
    #[cfg(feature = "otel")]
    run: Option<crate::otel::RunTrace>,
    #[cfg(feature = "otel")]
    attempts: std::collections::HashMap<Attempt, crate::otel::AttemptTrace>,
}

/// An attempt, as its spans know it: step, item, attempt number.
pub(super) type Attempt = (StepIndex, usize, u32);

impl Tag {
    /// The attempt this tag names.
    pub(super) fn attempt_id(self) -> Attempt {
        (self.step, self.item, self.attempt)
    }
}

impl Spans {
    /// Starts the span of `attempt` of a step of `def` (when the run's span records) and
    /// counts its start.
    pub(super) fn attempt(&mut self, def: &Definition, attempt: Attempt) {
        #[cfg(feature = "otel")]
        if let Some(run) = &self.run {
            let (step, item, number) = attempt;
            let def = &def.steps[step as usize];
            let span = run.attempt(def.name, def.for_each.map(|_| item), number);
            self.attempts.insert(attempt, span);
        }
        #[cfg(not(feature = "otel"))]
        let _ = (def, attempt);
    }

    /// Ends the span of `attempt`: completed or failed.
    pub(super) fn attempt_end(&mut self, attempt: Attempt, completed: bool) {
        #[cfg(feature = "otel")]
        if let Some(run) = &self.run {
            if let Some(span) = self.attempts.remove(&attempt) {
                run.end_attempt(span, completed);
            }
        }
        #[cfg(not(feature = "otel"))]
        let _ = (attempt, completed);
    }
}

/// The `tracing` span of an attempt of a step of `def`; none without a subscriber (with
/// tracing's `log` feature on, which sqlx turns on, even a disabled span costs more than the
/// rest of a step) or when the subscriber's filter leaves it off (nothing to enter or keep).
pub(super) fn step_span(def: &Definition, attempt: Attempt) -> Option<tracing::Span> {
    if !tracing::dispatcher::has_been_set() {
        return None;
    }
    let (step, item, attempt) = attempt;
    let name = def.steps[step as usize].name;
    Some(tracing::info_span!("step", step = name, attempt, item)).filter(|span| !span.is_disabled())
}

impl<W: Workflow> Driver<'_, '_, W> {
    /// Starts the run's span under `parent` (a stored or a parent's trace context).
    pub(super) fn trace_run(&mut self, parent: Option<&str>) {
        #[cfg(feature = "otel")]
        {
            let trace = crate::otel::RunTrace::start(
                self.def.name,
                || self.run.run_id().to_string(),
                parent,
            );
            let _ = self.run.trace.set(trace.traceparent());
            self.spans.run = Some(trace);
        }
        #[cfg(not(feature = "otel"))]
        let _ = parent;
    }

    /// Counts a failed attempt that will be tried again.
    pub(super) fn trace_retry(&self, tag: Tag) {
        #[cfg(feature = "otel")]
        if let Some(run) = &self.spans.run {
            run.retried(self.def.steps[tag.step as usize].name);
        }
        #[cfg(not(feature = "otel"))]
        let _ = tag;
    }

    /// Ends the run's span with how the drive ended.
    pub(super) fn trace_end<O>(&mut self, driven: &Driven<O>) {
        #[cfg(feature = "otel")]
        if let Some(run) = self.spans.run.take() {
            let outcome = match driven {
                Driven::Finished(Ok(_)) => "completed",
                Driven::Finished(Err(crate::error::WorkflowError::Cancelled { .. })) => "cancelled",
                Driven::Finished(Err(_)) => "failed",
                Driven::Park { .. } => "parked",
                Driven::Fenced { .. } => "fenced",
            };
            self.spans.attempts.clear();
            run.end(outcome);
        }
        #[cfg(not(feature = "otel"))]
        let _ = driven;
    }
}
