//! Bulk runs: many runs of one workflow from an iterator with a concurrency bound, as a stream
//! of per-run results plus totals, cancellable as a whole.

#[path = "common/temp_db.rs"]
mod temp_db;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;
use temp_db::TempDb;

use futures::StreamExt;
use workflow_core::prelude::*;

/// Counts the runs executing at once and the most seen.
#[derive(Clone, Default)]
struct Gauge {
    now: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

#[workflow]
impl Gauge {
    #[step]
    async fn enter(&self, n: u64) -> u64 {
        let now = self.now.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        n
    }

    #[step(after = enter)]
    async fn work(&self, n: u64) -> Result<u64, StepError> {
        tokio::task::yield_now().await;
        self.now.fetch_sub(1, SeqCst);
        if n % 1_000 == 999 {
            return Err(StepError::permanent(StepError::msg(format!(
                "item {n} refused"
            ))));
        }
        Ok(n * 2)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_runs_with_a_bound_of_100_never_exceed_100_at_once() {
    let wf = Gauge::default();
    let engine = Engine::in_memory();
    let mut bulk = engine.run_many(&wf, 0..10_000u64, 100);
    let mut seen = vec![false; 10_000];
    let mut failed = Vec::new();
    while let Some(item) = bulk.next().await {
        seen[item.index] = true;
        match item.result {
            Ok(out) => assert_eq!(out, item.index as u64 * 2),
            Err(error) => failed.push((item.index, error.step())),
        }
    }
    assert!(seen.iter().all(|s| *s), "every input ran once");
    assert!(
        wf.most.load(SeqCst) <= 100,
        "{} at once",
        wf.most.load(SeqCst)
    );
    assert!(wf.most.load(SeqCst) > 1, "the runs overlapped");
    failed.sort();
    assert_eq!(failed.len(), 10);
    assert!(failed
        .iter()
        .all(|(i, step)| i % 1_000 == 999 && *step == Some("work")));
    let totals = bulk.totals();
    assert_eq!((totals.succeeded, totals.failed), (9_990, 10));
    assert!(totals.p50.is_some() && totals.p99 >= totals.p50);
    assert!(totals.per_second > 0.0);
}

/// Waits for a signal that never comes: a run in flight until cancelled.
#[derive(Clone, Default)]
struct Slow {
    started: Arc<AtomicUsize>,
}

#[workflow]
impl Slow {
    #[step]
    async fn wait(&self, n: u32) -> u32 {
        self.started.fetch_add(1, SeqCst);
        tokio::time::sleep(Duration::from_secs(3_600)).await;
        n
    }
}

#[tokio::test]
async fn cancelling_a_bulk_stops_new_runs_and_cancels_those_in_flight() {
    let wf = Slow::default();
    let engine = Engine::in_memory();
    let mut bulk = engine.run_many(&wf, 0..1_000u32, 10);
    // Poll until the first ten started (none finishes on its own), then cancel everything.
    let started = std::time::Instant::now();
    while wf.started.load(SeqCst) < 10 {
        let poll = tokio::time::timeout(Duration::from_millis(10), bulk.next()).await;
        assert!(poll.is_err(), "a run finished on its own");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the runs never started"
        );
    }
    assert_eq!(wf.started.load(SeqCst), 10, "the bound holds");
    bulk.cancel();
    let totals = tokio::time::timeout(Duration::from_secs(60), bulk.finish())
        .await
        .expect("a cancelled bulk ends");
    assert_eq!((totals.succeeded, totals.failed), (0, 10));
    assert_eq!(
        wf.started.load(SeqCst),
        10,
        "no run started after the cancel"
    );
}

#[tokio::test]
async fn a_durable_bulk_stores_every_run() {
    let path = TempDb::new("bulk");
    let engine = Engine::sqlite(&path).await.unwrap();
    let wf = Gauge::default();
    let totals = engine.run_many(&wf, 0..300u64, 50).finish().await;
    assert_eq!((totals.succeeded, totals.failed), (300, 0));
    assert!(wf.most.load(SeqCst) <= 50);
    let completed = engine
        .list(&workflow_core::store::RunFilter {
            status: Some(RunStatus::Completed),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(completed.runs.len(), 300);
}
