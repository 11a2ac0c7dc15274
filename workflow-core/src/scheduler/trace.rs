//! The run's OpenTelemetry spans (feature `otel`, see `crate::otel`): one per drive of the run
//! and one per step attempt. Without the feature these hooks do nothing and cost nothing.

use super::{Driven, Driver};
use crate::task::Tag;
use crate::workflow::Workflow;

/// What the driver keeps of its spans.
#[derive(Default)]
pub(super) struct Spans {
    #[cfg(feature = "otel")]
    run: Option<crate::otel::RunTrace>,
    #[cfg(feature = "otel")]
    attempts: std::collections::HashMap<
        (crate::definition::StepIndex, usize, u32),
        crate::otel::AttemptTrace,
    >,
}

impl Spans {
    /// True while the run's span is open: its steps get spans of their own.
    pub(super) fn recording(&self) -> bool {
        #[cfg(feature = "otel")]
        return self.run.is_some();
        #[cfg(not(feature = "otel"))]
        false
    }
}

impl<W: Workflow> Driver<'_, '_, W> {
    /// Starts the run's span under `parent` (a stored or a parent's trace context).
    pub(super) fn trace_run(&mut self, parent: Option<&str>) {
        #[cfg(feature = "otel")]
        {
            let trace =
                crate::otel::RunTrace::start(self.def.name, self.run.run_id.as_str(), parent);
            let _ = self.run.trace.set(trace.traceparent());
            self.spans.run = Some(trace);
        }
        #[cfg(not(feature = "otel"))]
        let _ = parent;
    }

    /// Starts an attempt's span.
    pub(super) fn trace_attempt(&mut self, tag: Tag) {
        #[cfg(feature = "otel")]
        if let Some(run) = &self.spans.run {
            let def = &self.def.steps[tag.step as usize];
            let item = def.for_each.map(|_| tag.item);
            let span = run.attempt(def.name, item, tag.attempt);
            self.spans
                .attempts
                .insert((tag.step, tag.item, tag.attempt), span);
        }
        #[cfg(not(feature = "otel"))]
        let _ = tag;
    }

    /// Ends an attempt's span: completed or failed.
    pub(super) fn trace_attempt_end(&mut self, tag: Tag, completed: bool) {
        #[cfg(feature = "otel")]
        if let Some(run) = &self.spans.run {
            if let Some(span) = self
                .spans
                .attempts
                .remove(&(tag.step, tag.item, tag.attempt))
            {
                run.end_attempt(span, completed);
            }
        }
        #[cfg(not(feature = "otel"))]
        let _ = (tag, completed);
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
