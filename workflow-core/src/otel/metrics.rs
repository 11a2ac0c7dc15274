//! The instruments, all from the global meter provider's `workflow` meter (see the table in
//! [`crate::otel`]).

use std::collections::BTreeSet;

use opentelemetry::metrics::{Counter, Histogram, Meter};
use opentelemetry::{global, KeyValue};

fn meter() -> Meter {
    global::meter("workflow")
}

/// The step instruments of a run's drive.
pub(super) struct StepMetrics {
    pub(super) started: Counter<u64>,
    pub(super) completed: Counter<u64>,
    pub(super) failed: Counter<u64>,
    pub(super) retried: Counter<u64>,
    pub(super) duration: Histogram<f64>,
}

impl StepMetrics {
    pub(super) fn new() -> Self {
        let meter = meter();
        StepMetrics {
            started: meter.u64_counter("workflow.steps.started").build(),
            completed: meter.u64_counter("workflow.steps.completed").build(),
            failed: meter.u64_counter("workflow.steps.failed").build(),
            retried: meter.u64_counter("workflow.steps.retried").build(),
            duration: meter
                .f64_histogram("workflow.step.duration")
                .with_unit("s")
                .build(),
        }
    }
}

/// Adds `runs` to `workflow.runs.taken_over`.
pub(super) fn count_takeovers(runs: u64) {
    if runs > 0 {
        meter()
            .u64_counter("workflow.runs.taken_over")
            .with_description("runs taken back from dead or expired workers")
            .build()
            .add(runs, &[]);
    }
}

/// Records `workflow.queue.depth` per queue of `depths`, and 0 for each queue of `reported`
/// that `depths` no longer names; `reported` becomes the queues of `depths`.
pub(super) fn record_queue_depths(reported: &mut BTreeSet<String>, depths: Vec<(String, u64)>) {
    let gauge = meter()
        .u64_gauge("workflow.queue.depth")
        .with_description("ready runs waiting for a worker")
        .build();
    let now: BTreeSet<String> = depths.iter().map(|(queue, _)| queue.clone()).collect();
    let emptied = reported.difference(&now).map(|queue| (queue.clone(), 0));
    for (queue, depth) in depths.iter().cloned().chain(emptied) {
        gauge.record(depth, &[KeyValue::new("queue", queue)]);
    }
    *reported = now;
}
