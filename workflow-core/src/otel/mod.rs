//! OpenTelemetry (feature `otel`): spans and metrics through the global providers, and (feature
//! `otlp`) their export to a collector.
//!
//! **Spans.** A `workflow.run` span per drive of a run (`workflow.name`, `workflow.run_id`,
//! `workflow.outcome`) and a `workflow.step` span per step attempt under it (`workflow.step`,
//! `workflow.item`, `workflow.attempt`, `workflow.outcome`), through the global tracer
//! provider. A durable run stores a trace context when it is created (the current span's, its
//! parent's for a child run, or a fresh root), and every drive of it (a resume after a crash, a
//! takeover by another worker) continues that trace; a child run's spans go under its parent's
//! run span.
//!
//! **Metrics**, through the global meter provider:
//!
//! | instrument | kind | attributes |
//! |---|---|---|
//! | `workflow.steps.started`, `.completed`, `.failed`, `.retried` | counter | `workflow.step` |
//! | `workflow.step.duration` (seconds) | histogram | `workflow.step` |
//! | `workflow.runs.taken_over`: runs a worker took back from dead or expired workers | counter | |
//! | `workflow.queue.depth`: ready runs waiting for a worker, counted every tenth heartbeat | gauge | `queue` |
//!
//! Without installed providers the API is a no-op. Install your own, or (feature `otlp`)
//! `install_otlp_from_env` for an OTLP exporter configured by the standard `OTEL_*`
//! environment variables.

#[cfg(feature = "otel")]
mod metrics;
#[cfg(feature = "otlp")]
mod otlp;
#[cfg(feature = "otel")]
mod traced;

#[cfg(feature = "otlp")]
pub use otlp::{install_otlp_from_env, OtlpError, OtlpGuard};
#[cfg(feature = "otel")]
pub(crate) use traced::{AttemptTrace, RunTrace};

use crate::options::RunOptions;
use crate::store::{Store, WorkerId};

/// The trace context to store with a new durable run: the caller's (a parent's), else the
/// current span's, else a fresh root; `None` without the `otel` feature.
pub(crate) fn context_for_new_run(options: &RunOptions) -> Option<String> {
    #[cfg(feature = "otel")]
    {
        Some(traced::new_run_context(options))
    }
    #[cfg(not(feature = "otel"))]
    {
        let _ = options;
        None
    }
}

/// Counts `runs` taken over from dead or expired workers (`workflow.runs.taken_over`).
pub(crate) fn count_takeovers(runs: u64) {
    #[cfg(feature = "otel")]
    metrics::count_takeovers(runs);
    #[cfg(not(feature = "otel"))]
    let _ = runs;
}

/// Counts the runs that `worker`, whose process is gone, holds: they are taken over when it is
/// removed. Nothing (no query) without the `otel` feature.
pub(crate) async fn count_takeovers_from(store: &dyn Store, worker: &WorkerId) {
    #[cfg(feature = "otel")]
    {
        let mut filter = crate::store::RunFilter {
            status: Some(crate::store::RunStatus::Claimed),
            owner: Some(worker.clone()),
            ..crate::store::RunFilter::default()
        };
        loop {
            match store.list(&filter).await {
                Ok(page) => {
                    count_takeovers(page.runs.len() as u64);
                    match page.next {
                        Some(next) => filter.after = Some(next),
                        None => return,
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, %worker, "cannot count a dead worker's runs");
                    return;
                }
            }
        }
    }
    #[cfg(not(feature = "otel"))]
    let _ = (store, worker);
}

/// The `workflow.queue.depth` gauge of one worker: it remembers the queues it reported, so a
/// queue that emptied is reported as 0 rather than left at its last depth. Nothing without the
/// `otel` feature.
#[derive(Default)]
pub(crate) struct QueueDepth {
    #[cfg(feature = "otel")]
    reported: std::collections::BTreeSet<String>,
    /// Heartbeats since the worker started.
    #[cfg(feature = "otel")]
    beats: u32,
}

/// Heartbeats from one count of the ready runs to the next: each count is a query per worker,
/// and metric readers export far less often than workers heartbeat (every 60 s by default,
/// against a heartbeat every 500 ms at most).
#[cfg(feature = "otel")]
const HEARTBEATS_PER_REPORT: u32 = 10;

impl QueueDepth {
    /// At every tenth heartbeat (the first included): records the store's count of ready runs
    /// per queue.
    pub(crate) async fn report(&mut self, store: &dyn Store) {
        #[cfg(feature = "otel")]
        {
            let due = self.beats.is_multiple_of(HEARTBEATS_PER_REPORT);
            self.beats = self.beats.wrapping_add(1);
            if !due {
                return;
            }
            match store.queue_depths().await {
                Ok(depths) => metrics::record_queue_depths(&mut self.reported, depths),
                Err(error) => tracing::debug!(%error, "cannot count the ready runs per queue"),
            }
        }
        #[cfg(not(feature = "otel"))]
        let _ = store;
    }
}
