//! The spans of runs and step attempts, and the trace context stored with a durable run
//! (W3C `traceparent` text).

use std::time::Instant;

use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer,
};
use opentelemetry::{global, Context, KeyValue};

use super::metrics::StepMetrics;
use crate::options::RunOptions;

/// `00-{trace id}-{span id}-{flags}`.
fn encode(context: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        context.trace_id(),
        context.span_id(),
        context.trace_flags().to_u8()
    )
}

fn decode(text: &str) -> Option<SpanContext> {
    let mut parts = text.split('-');
    let (_, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let context = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

pub(super) fn new_run_context(options: &RunOptions) -> String {
    if let Some(parent) = &options.trace_parent {
        return parent.clone();
    }
    let current = Context::current();
    if current.span().span_context().is_valid() {
        return encode(current.span().span_context());
    }
    // A fresh root the run's drives all hang from: the same trace across restarts.
    let ids = crate::run_id::RunId::generate();
    let mut hash = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&ids, &mut hash);
    let high = std::hash::Hasher::finish(&hash);
    std::hash::Hash::hash(&high, &mut hash);
    let low = std::hash::Hasher::finish(&hash);
    let trace = TraceId::from_bytes(((u128::from(high) << 64) | u128::from(low)).to_be_bytes());
    let span = SpanId::from_bytes(low.max(1).to_be_bytes());
    encode(&SpanContext::new(
        trace,
        span,
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    ))
}

/// One drive of a run: its span, as the context of its steps' spans.
pub(crate) struct RunTrace {
    context: Context,
    /// Made once per drive: the global provider's lookup allocates.
    tracer: global::BoxedTracer,
    /// False under the no-op provider (or a sampler that drops the run): then its steps get no
    /// spans either (their metrics are still counted).
    recording: bool,
    workflow: &'static str,
    metrics: StepMetrics,
}

impl RunTrace {
    /// Starts the run's span under `parent` (a stored or a parent's context), else under
    /// the current context; its attributes (the run's id from `run_id`) only when it records,
    /// so an untraced in-memory run never makes its id.
    pub(crate) fn start(
        workflow: &'static str,
        run_id: impl FnOnce() -> String,
        parent: Option<&str>,
    ) -> Self {
        let parent = parent.and_then(decode).map_or_else(Context::current, |c| {
            Context::new().with_remote_span_context(c)
        });
        let tracer = global::tracer("workflow");
        let mut span = tracer.start_with_context("workflow.run", &parent);
        let recording = span.is_recording();
        if recording {
            span.set_attribute(KeyValue::new("workflow.name", workflow));
            span.set_attribute(KeyValue::new("workflow.run_id", run_id()));
        }
        RunTrace {
            context: parent.with_span(span),
            tracer,
            recording,
            workflow,
            metrics: StepMetrics::new(),
        }
    }

    /// The run span's context, for its children.
    pub(crate) fn traceparent(&self) -> String {
        encode(self.context.span().span_context())
    }

    /// Starts the span of an attempt (when the run's span records) and counts its start.
    pub(crate) fn attempt(
        &self,
        step: &'static str,
        item: Option<usize>,
        attempt: u32,
    ) -> AttemptTrace {
        let span = self.recording.then(|| {
            let mut span = self
                .tracer
                .start_with_context("workflow.step", &self.context);
            span.set_attribute(KeyValue::new("workflow.name", self.workflow));
            span.set_attribute(KeyValue::new("workflow.step", step));
            span.set_attribute(KeyValue::new("workflow.attempt", i64::from(attempt)));
            if let Some(item) = item {
                span.set_attribute(KeyValue::new("workflow.item", item as i64));
            }
            span
        });
        let labels = [KeyValue::new("workflow.step", step)];
        self.metrics.started.add(1, &labels);
        AttemptTrace {
            span,
            started: Instant::now(),
            step,
        }
    }

    /// Ends an attempt's span with its outcome (`completed` or `failed`).
    pub(crate) fn end_attempt(&self, attempt: AttemptTrace, completed: bool) {
        if let Some(mut span) = attempt.span {
            let outcome = if completed { "completed" } else { "failed" };
            span.set_attribute(KeyValue::new("workflow.outcome", outcome));
            span.end();
        }
        let labels = [KeyValue::new("workflow.step", attempt.step)];
        let counter = if completed {
            &self.metrics.completed
        } else {
            &self.metrics.failed
        };
        counter.add(1, &labels);
        self.metrics
            .duration
            .record(attempt.started.elapsed().as_secs_f64(), &labels);
    }

    /// Counts a failed attempt of `step` that will be tried again.
    pub(crate) fn retried(&self, step: &'static str) {
        self.metrics
            .retried
            .add(1, &[KeyValue::new("workflow.step", step)]);
    }

    /// Ends the run's span with `outcome`.
    pub(crate) fn end(self, outcome: &'static str) {
        let span = self.context.span();
        span.set_attribute(KeyValue::new("workflow.outcome", outcome));
        span.end();
    }
}

/// An attempt's span.
pub(crate) struct AttemptTrace {
    /// None when the run's span does not record.
    span: Option<global::BoxedSpan>,
    started: Instant,
    step: &'static str,
}
