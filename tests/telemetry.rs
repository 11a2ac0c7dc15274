//! OpenTelemetry (feature `otel`), through the SDK's in-memory exporters: the span tree of a
//! durable run with a retried step, a child workflow, and a resume after a crash. Every span
//! is in one trace: the crashed drive's and the resumed drive's run spans hang from the trace
//! context stored with the run, each attempt's span from its drive's, and the child's run span
//! from its parent's. And the workers' metrics: runs taken over from a worker whose lease
//! expired, the depth of a queue. And the spans and metrics of an in-memory chain of plain
//! steps, which runs in place (straight-line code).
//!
//! Each test installs its own global providers, so they run one at a time (`ONE_AT_A_TIME`).

#[path = "common/temp_db.rs"]
mod temp_db;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;
use temp_db::TempDb;

use opentelemetry::trace::SpanId;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use workflow_core::prelude::*;
use workflow_core::store::{
    ClaimRequest, DefinitionKey, SqliteStore, Store, WorkerId, WorkerRegistration,
};
use workflow_testkit::Harness;

static PLANNED: AtomicUsize = AtomicUsize::new(0);

/// Held by each test for its whole run: the global providers are the test's own.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Installs a fresh global tracer provider with an in-memory exporter.
fn install_spans() -> InMemorySpanExporter {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    opentelemetry::global::set_tracer_provider(provider);
    exporter
}

/// Installs fresh global meter provider with an in-memory exporter.
fn install_meters() -> (SdkMeterProvider, InMemoryMetricExporter) {
    let metrics = InMemoryMetricExporter::default();
    let meters = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(metrics.clone()).build())
        .build();
    opentelemetry::global::set_meter_provider(meters.clone());
    (meters, metrics)
}

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
    let _alone = ONE_AT_A_TIME.lock().await;
    let exporter = install_spans();
    let (meters, metrics) = install_meters();

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
    let (sums, durations) = step_metrics(&meters, &metrics);
    // plan twice (one failure), book and the child's reserve once, pay once (book's output
    // was restored in the resumed drive).
    assert_eq!(sums.get("workflow.steps.started"), Some(&5), "{sums:?}");
    assert_eq!(sums.get("workflow.steps.failed"), Some(&1), "{sums:?}");
    assert_eq!(sums.get("workflow.steps.retried"), Some(&1), "{sums:?}");
    assert_eq!(sums.get("workflow.steps.completed"), Some(&4), "{sums:?}");
    assert_eq!(durations, 5);
}

/// The step metrics exported so far: each counter's sum over steps, and the number of
/// recorded durations.
fn step_metrics(
    meters: &SdkMeterProvider,
    metrics: &InMemoryMetricExporter,
) -> (BTreeMap<String, u64>, u64) {
    meters.force_flush().unwrap();
    let mut sums = BTreeMap::new();
    let mut durations = 0;
    for resource in metrics.get_finished_metrics().unwrap() {
        for metric in resource.scope_metrics().flat_map(|s| s.metrics()) {
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
    (sums, durations)
}

/// A chain of plain steps, whose middle step fails at its first attempt.
struct Shipment {
    packs: AtomicUsize,
}

#[workflow]
impl Shipment {
    #[step]
    async fn weigh(&self, kilos: u32) -> u32 {
        kilos
    }
    #[step(after = weigh, retry = 1)]
    async fn pack(&self, kilos: u32) -> Result<u32, StepError> {
        if self.packs.fetch_add(1, SeqCst) == 0 {
            return Err(StepError::msg("the tape ran out"));
        }
        Ok(kilos + 1)
    }
    #[step(after = pack)]
    async fn send(&self, kilos: u32) -> u32 {
        kilos * 2
    }
}

#[tokio::test]
async fn an_in_memory_chain_run_in_place_has_a_span_and_metrics_per_attempt() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let exporter = install_spans();
    let (meters, metrics) = install_meters();

    let shipment = Shipment {
        packs: AtomicUsize::new(0),
    };
    assert_eq!(Engine::in_memory().run(&shipment, 4).await.unwrap(), 10);

    let spans = exporter.get_finished_spans().unwrap();
    let run = spans
        .iter()
        .find(|s| s.name == "workflow.run")
        .expect("the run's span");
    let attempts: Vec<[Option<String>; 3]> = spans
        .iter()
        .filter(|s| s.name == "workflow.step")
        .map(|s| {
            assert_eq!(s.parent_span_id, run.span_context.span_id(), "{s:#?}");
            ["workflow.step", "workflow.attempt", "workflow.outcome"].map(|key| attribute(s, key))
        })
        .collect();
    let attempt = |step: &str, attempt: &str, outcome: &str| {
        [step, attempt, outcome].map(|text| Some(text.to_owned()))
    };
    assert_eq!(
        attempts,
        [
            attempt("weigh", "1", "completed"),
            attempt("pack", "1", "failed"),
            attempt("pack", "2", "completed"),
            attempt("send", "1", "completed"),
        ]
    );
    let (sums, durations) = step_metrics(&meters, &metrics);
    assert_eq!(sums.get("workflow.steps.started"), Some(&4), "{sums:?}");
    assert_eq!(sums.get("workflow.steps.failed"), Some(&1), "{sums:?}");
    assert_eq!(sums.get("workflow.steps.completed"), Some(&3), "{sums:?}");
    assert_eq!(durations, 4);
}

#[derive(Clone)]
struct Parcel;

#[workflow]
impl Parcel {
    #[step]
    async fn label(&self, weight: u32) -> String {
        format!("{weight} kg")
    }
}

/// The worker metrics of the latest export: runs taken over, and each queue's depth.
#[derive(Debug, Default, PartialEq)]
struct WorkerMetrics {
    taken_over: u64,
    depth: BTreeMap<String, u64>,
}

/// Exports until the worker metrics satisfy `done` (the workers report at their heartbeats).
async fn metrics_until(
    meters: &SdkMeterProvider,
    exporter: &InMemoryMetricExporter,
    done: impl Fn(&WorkerMetrics) -> bool,
) -> WorkerMetrics {
    let mut seen = WorkerMetrics::default();
    // A bound against a hang, not a timing assertion: heartbeats come every 50 ms.
    for _ in 0..1_000 {
        exporter.reset();
        meters.force_flush().unwrap();
        seen = WorkerMetrics::default();
        for resource in exporter.get_finished_metrics().unwrap() {
            for metric in resource.scope_metrics().flat_map(|s| s.metrics()) {
                match (metric.name(), metric.data()) {
                    ("workflow.runs.taken_over", AggregatedMetrics::U64(MetricData::Sum(sum))) => {
                        seen.taken_over = sum.data_points().map(|p| p.value()).sum();
                    }
                    ("workflow.queue.depth", AggregatedMetrics::U64(MetricData::Gauge(gauge))) => {
                        for point in gauge.data_points() {
                            let queue = point
                                .attributes()
                                .find(|kv| kv.key.as_str() == "queue")
                                .map(|kv| kv.value.to_string())
                                .unwrap_or_default();
                            seen.depth.insert(queue, point.value());
                        }
                    }
                    _ => {}
                }
            }
        }
        if done(&seen) {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the worker metrics never got there: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_count_the_runs_they_take_over_and_report_the_depth_of_queues() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let (meters, metrics) = install_meters();
    let path = TempDb::new("telemetry-takeover");
    let open = || async { SqliteStore::open(&path).await.unwrap() };
    let quick = WorkerOptions::default().lease(Duration::from_millis(200));

    // Two runs on the `parcels` queue; a worker claims one and is never heard of again.
    let client = DurableEngine::with_options(open().await, quick.clone().claim_runs(false));
    for (id, weight) in [("parcel-1", 3), ("parcel-2", 5)] {
        let options = RunOptions::new().queue("parcels").run_id(id);
        client.start_with(&Parcel, weight, options).await.unwrap();
    }
    let store = open().await;
    let dead = WorkerId::generate();
    let registration = WorkerRegistration {
        worker: dead.clone(),
        lease: Duration::from_millis(200),
    };
    store.register_worker(&registration).await.unwrap();
    let request = ClaimRequest {
        definitions: vec![DefinitionKey {
            workflow: "Parcel".into(),
            hash: Parcel::definition().hash,
        }],
        limit: 1,
    };
    assert_eq!(store.claim(&dead, &request).await.unwrap().len(), 1);

    // A worker that claims nothing heartbeats: it reports the ready run, takes the dead
    // worker's run over once its lease expired, and reports both ready.
    let observer = DurableEngine::with_options(open().await, quick.clone().claim_runs(false));
    observer.register(&Parcel).await.unwrap();
    let seen = metrics_until(&meters, &metrics, |m| {
        m.taken_over == 1 && m.depth.get("parcels") == Some(&2)
    })
    .await;
    assert_eq!(seen.taken_over, 1, "{seen:?}");

    // A worker that claims runs both; the emptied queue is reported as 0, not left at 2.
    let worker = DurableEngine::with_options(open().await, quick);
    worker.register(&Parcel).await.unwrap();
    for (id, label) in [("parcel-1", "3 kg"), ("parcel-2", "5 kg")] {
        assert_eq!(client.handle::<Parcel>(id).wait().await.unwrap(), label);
    }
    let seen = metrics_until(&meters, &metrics, |m| m.depth.get("parcels") == Some(&0)).await;
    assert_eq!(seen.taken_over, 1, "counted once, by one worker: {seen:?}");
}
