//! OpenTelemetry (feature `otel`), through the SDK's in-memory exporter: the span tree of a
//! durable run with a retried step, a child workflow, and a resume after a crash. Every span
//! is in one trace: the crashed drive's and the resumed drive's run spans hang from the trace
//! context stored with the run, each attempt's span from its drive's, and the child's run span
//! from its parent's.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use opentelemetry::trace::SpanId;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use workflow_core::prelude::*;
use workflow_testkit::Harness;

static PLANNED: AtomicUsize = AtomicUsize::new(0);

#[derive(Default)]
struct Booking;

#[workflow]
impl Booking {
    #[step]
    async fn reserve(&self, nights: u32) -> u32 {
        nights
    }
}

#[derive(Clone)]
struct Trip;

#[workflow]
impl Trip {
    /// Fails its first attempt.
    #[step(retry = 1)]
    async fn plan(&self, nights: u32) -> Result<u32, StepError> {
        if PLANNED.fetch_add(1, SeqCst) == 0 {
            return Err(StepError::msg("no rooms yet"));
        }
        Ok(nights)
    }
    #[step(after = plan, workflow = Booking)]
    async fn book(&self, nights: u32) -> u32;

    #[step(after = book)]
    async fn pay(&self, nights: u32) -> u32 {
        nights * 90
    }
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_a_retry_a_child_and_a_resume_is_one_trace() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    opentelemetry::global::set_tracer_provider(provider);
    let metrics = InMemoryMetricExporter::default();
    let meters = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(metrics.clone()).build())
        .build();
    opentelemetry::global::set_meter_provider(meters.clone());

    // The first drive stops as a crash would, right after `book` committed; a new engine
    // resumes it.
    let crashed = Harness::sqlite_temp(Trip)
        .await
        .crash_after(Trip::steps().book)
        .run(3)
        .await;
    let resumed = crashed.resume_fresh().await;
    assert_eq!(*resumed.output(), 270);

    let spans = exporter.get_finished_spans().unwrap();
    let runs: Vec<&SpanData> = spans
        .iter()
        .filter(|s| {
            s.name == "workflow.run" && attribute(s, "workflow.name").as_deref() == Some("Trip")
        })
        .collect();
    assert_eq!(
        runs.len(),
        2,
        "the crashed drive and the resumed one: {spans:#?}"
    );
    let trace = runs[0].span_context.trace_id();
    assert!(
        spans.iter().all(|s| s.span_context.trace_id() == trace),
        "one trace: {spans:#?}"
    );
    // Both drives hang from the context stored with the run.
    assert_eq!(runs[0].parent_span_id, runs[1].parent_span_id);
    assert_ne!(runs[0].parent_span_id, SpanId::INVALID);
    let outcomes: Vec<Option<String>> = runs
        .iter()
        .map(|r| attribute(r, "workflow.outcome"))
        .collect();
    assert!(outcomes.contains(&Some("completed".into())), "{outcomes:?}");

    // The retried step: a failed attempt and a completed one, under the first drive's span.
    let first = runs
        .iter()
        .find(|r| {
            r.span_context.span_id() != SpanId::INVALID
                && attribute(r, "workflow.outcome").as_deref() != Some("completed")
        })
        .expect("the crashed drive");
    let plan: Vec<(Option<String>, Option<String>)> = spans
        .iter()
        .filter(|s| {
            s.name == "workflow.step" && attribute(s, "workflow.step").as_deref() == Some("plan")
        })
        .map(|s| {
            assert_eq!(s.parent_span_id, first.span_context.span_id());
            (
                attribute(s, "workflow.attempt"),
                attribute(s, "workflow.outcome"),
            )
        })
        .collect();
    assert_eq!(
        plan,
        [
            (Some("1".into()), Some("failed".into())),
            (Some("2".into()), Some("completed".into()))
        ]
    );

    // The child's run span hangs from the parent's run span (the drive that ran it).
    let child = spans
        .iter()
        .find(|s| {
            s.name == "workflow.run" && attribute(s, "workflow.name").as_deref() == Some("Booking")
        })
        .expect("the child's run span");
    assert_eq!(child.parent_span_id, first.span_context.span_id());
    // `pay` ran in the resumed drive, `plan` was restored there, not run again.
    let pay = spans
        .iter()
        .find(|s| attribute(s, "workflow.step").as_deref() == Some("pay"))
        .expect("pay's span");
    assert_ne!(pay.parent_span_id, first.span_context.span_id());
    assert_eq!(PLANNED.load(SeqCst), 2);

    // The step metrics: attempts started, completed and failed (summed over steps), and a
    // duration per completed or failed attempt.
    meters.force_flush().unwrap();
    let mut sums = std::collections::BTreeMap::new();
    let mut durations = 0;
    for resource in metrics.get_finished_metrics().unwrap() {
        for scope in resource.scope_metrics() {
            for metric in scope.metrics() {
                match metric.data() {
                    AggregatedMetrics::U64(MetricData::Sum(sum)) => {
                        let total: u64 = sum.data_points().map(|p| p.value()).sum();
                        sums.insert(metric.name().to_owned(), total);
                    }
                    AggregatedMetrics::F64(MetricData::Histogram(histogram)) => {
                        durations = histogram.data_points().map(|p| p.count()).sum::<u64>();
                    }
                    _ => {}
                }
            }
        }
    }
    // plan twice (one failure), book and the child's reserve once, pay once (book's output
    // was restored in the resumed drive).
    assert_eq!(sums.get("workflow.steps.started"), Some(&5), "{sums:?}");
    assert_eq!(sums.get("workflow.steps.failed"), Some(&1), "{sums:?}");
    assert_eq!(sums.get("workflow.steps.retried"), Some(&1), "{sums:?}");
    assert_eq!(sums.get("workflow.steps.completed"), Some(&4), "{sums:?}");
    assert_eq!(durations, 5);
}
