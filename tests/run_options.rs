//! Per-run overrides of a step's tunables (`RunOptions::retry`, `timeout`, `concurrency`),
//! named through the workflow's step enum; the definition (and its hash) is unchanged.

#[path = "common/temp_db.rs"]
mod temp_db;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;
use temp_db::TempDb;

use workflow_core::prelude::*;

#[derive(Clone, Default)]
struct Batch {
    calls: Arc<AtomicUsize>,
    now: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

#[workflow]
impl Batch {
    #[step]
    async fn split(&self, n: usize) -> Vec<usize> {
        (0..n).collect()
    }

    #[step(after = split, for_each, concurrency = 4)]
    async fn work(&self, item: usize) -> usize {
        let now = self.now.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.now.fetch_sub(1, SeqCst);
        item
    }

    #[step(after = work, retry = 1, backoff = "1ms", timeout = "10s")]
    async fn flaky(&self, items: Vec<usize>) -> Result<usize, StepError> {
        if self.calls.fetch_add(1, SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            return Err(StepError::msg("not yet"));
        }
        Ok(items.len())
    }
}

#[tokio::test]
async fn without_overrides_the_definition_applies() {
    let wf = Batch::default();
    let error = Engine::in_memory().run(&wf, 8).await.unwrap_err();
    assert_eq!(error.step(), Some("flaky"));
    // And a retry override can also take retries away.
    let wf2 = Batch::default();
    let options = RunOptions::new().retry(BatchStep::Flaky, 0);
    let none = Engine::in_memory().run_with(&wf2, 1, options).await;
    assert!(none.result.is_err());
    assert_eq!(wf2.calls.load(SeqCst), 1);
    assert_eq!(wf.calls.load(SeqCst), 2, "one retry in the definition");
    assert!(wf.most.load(SeqCst) <= 4);
}

#[tokio::test]
async fn a_run_overrides_retry_and_concurrency_of_named_steps() {
    let wf = Batch::default();
    let options = RunOptions::new()
        .retry(BatchStep::Flaky, 2)
        .concurrency(BatchStep::Work, 1);
    let done = Engine::in_memory().run_with(&wf, 8, options).await;
    assert_eq!(done.result.unwrap(), 8);
    assert_eq!(wf.calls.load(SeqCst), 3);
    assert_eq!(wf.most.load(SeqCst), 1, "one item at a time");
    assert_eq!(done.history.step("flaky").unwrap().attempts, 3);
}

#[tokio::test]
async fn a_run_overrides_a_steps_timeout() {
    let wf = Batch::default();
    let options = RunOptions::new().timeout(BatchStep::Flaky, Duration::from_millis(10));
    let error = Engine::in_memory()
        .run_with(&wf, 2, options)
        .await
        .result
        .unwrap_err();
    match error {
        WorkflowError::StepFailed { step, error, .. } => {
            assert_eq!(step, "flaky");
            assert!(error.is_timeout(), "{error}");
        }
        other => panic!("expected a timed-out step, got {other:?}"),
    }
}

#[tokio::test]
async fn overrides_apply_on_a_durable_engine_too() {
    let path = TempDb::new("run-options");
    let engine = Engine::sqlite(&path).await.unwrap();
    let wf = Batch::default();
    let options = RunOptions::new().retry(BatchStep::Flaky, 2);
    let done = engine.run_with(&wf, 3, options).await;
    assert_eq!(done.result.unwrap(), 3);
    assert_eq!(wf.calls.load(SeqCst), 3);
}
