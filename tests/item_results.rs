//! `for_each` with `item_results`: the next step receives each item's `Result` (rustc makes
//! it handle the failures), and an item that fails for good does not stop the others.

#[path = "common/temp_db.rs"]
mod temp_db;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use temp_db::TempDb;

use futures::StreamExt;
use workflow_core::prelude::*;

#[derive(Clone, Default)]
struct Import {
    attempts: Arc<AtomicUsize>,
    /// `report` hangs while set (a crash point for the durable test).
    hang: Arc<std::sync::atomic::AtomicBool>,
}

#[workflow]
impl Import {
    #[step]
    async fn rows(&self, n: u32) -> Vec<u32> {
        (0..n).collect()
    }

    /// Odd rows are malformed (after one retry each).
    #[step(after = rows, for_each, concurrency = 2, item_results, retry = 1, backoff = "1ms")]
    async fn parse(&self, row: u32) -> Result<u32, StepError> {
        self.attempts.fetch_add(1, SeqCst);
        if row % 2 == 1 {
            return Err(StepError::msg(format!("row {row} is malformed")));
        }
        Ok(row * 10)
    }

    #[step(after = parse)]
    async fn report(&self, parsed: Vec<Result<u32, StepError>>) -> (Vec<u32>, Vec<String>) {
        if self.hang.load(SeqCst) {
            std::future::pending::<()>().await;
        }
        let mut ok = Vec::new();
        let mut failed = Vec::new();
        for item in parsed {
            match item {
                Ok(value) => ok.push(value),
                Err(error) => failed.push(error.to_string()),
            }
        }
        (ok, failed)
    }
}

#[tokio::test]
async fn failed_items_reach_the_next_step_and_the_others_go_on() {
    let wf = Import::default();
    let (ok, failed) = Engine::in_memory().run(&wf, 6).await.unwrap();
    assert_eq!(ok, [0, 20, 40]);
    assert_eq!(
        failed,
        [
            "row 1 is malformed",
            "row 3 is malformed",
            "row 5 is malformed"
        ]
    );
    assert_eq!(
        wf.attempts.load(SeqCst),
        3 + 3 * 2,
        "failed rows were retried once"
    );
}

#[tokio::test]
async fn progress_counts_failed_items_too() {
    let engine = Engine::in_memory();
    let run = engine.start(&Import::default(), 4).await.unwrap();
    let events: Vec<RunEvent<ImportStep>> = run.events().collect().await;
    let progress: Vec<(usize, Option<usize>)> = events
        .iter()
        .filter_map(|e| match e {
            RunEvent::ForEachProgress { done, total, .. } => Some((*done, *total)),
            _ => None,
        })
        .collect();
    assert_eq!(
        progress,
        [(1, Some(4)), (2, Some(4)), (3, Some(4)), (4, Some(4))]
    );
    assert!(run.wait().await.is_ok());
}

#[tokio::test]
async fn on_a_durable_engine_failed_items_are_journaled_and_replayed() {
    let path = TempDb::new("item-results");
    let engine = Engine::sqlite(&path).await.unwrap();
    let wf = Import::default();
    let options = RunOptions::new().run_id("import-1");
    let (ok, failed) = engine.run_with(&wf, 4, options).await.result.unwrap();
    assert_eq!((ok, failed.len()), (vec![0, 20], 2));
    let history = engine.handle::<Import>("import-1").history().await.unwrap();
    assert_eq!(
        history.step("parse").unwrap().output,
        Some(serde_json::json!([
            {"ok": 0},
            {"err": "row 1 is malformed"},
            {"ok": 20},
            {"err": "row 3 is malformed"}
        ]))
    );
    // A run interrupted after its items: resuming it decodes the journaled items, failures
    // included, without running any of them again.
    wf.hang.store(true, SeqCst);
    let id = RunId::from("import-2");
    let interrupted = {
        let (engine, wf, id) = (engine.clone(), wf.clone(), id.clone());
        tokio::spawn(async move { engine.run_with(&wf, 4, RunOptions::new().run_id(id)).await })
    };
    let started = std::time::Instant::now();
    // `rows`' output, then the four items: all committed, `report` hangs.
    while engine.journal(&id).await.map_or(0, |j| j.len()) < 5 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "items never ran"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    interrupted.abort();
    let _ = interrupted.await;
    let attempts = wf.attempts.load(SeqCst);
    wf.hang.store(false, SeqCst);
    let resumed = engine.resume(&wf, &id).await;
    let (ok, failed) = resumed.result.unwrap();
    assert_eq!(ok, [0, 20]);
    assert_eq!(failed, ["row 1 is malformed", "row 3 is malformed"]);
    assert_eq!(wf.attempts.load(SeqCst), attempts, "no item ran again");
}
