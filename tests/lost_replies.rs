//! A write whose commit succeeded but whose reply was lost (the connection dropped after
//! COMMIT) must not strand its runs: a claim the worker never saw, or a release it thinks
//! failed, leaves runs claimed by a live worker that does not execute them; the worker finds
//! and gives them back. Also: `max_runs` holds while claimed runs are still starting, and a
//! full worker claims again as soon as one of its runs ends.

#[path = "common/temp_db.rs"]
mod temp_db;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};
use temp_db::TempDb;

#[path = "common/hooked_store.rs"]
mod hooked_store;

use hooked_store::{Hooked, Hooks};
use workflow_core::prelude::*;
use workflow_core::store::{RunFilter, SqliteStore, StoreError};
use workflow_core::WorkerOptions;

/// The next `lose_claims` claims (and `lose_releases` releases) commit and then answer with a
/// connection error, as if the reply was lost.
struct LostReplies {
    lose_claims: AtomicUsize,
    lose_releases: AtomicUsize,
}

impl Hooks for LostReplies {
    fn after_claim(&self) -> Result<(), StoreError> {
        match take(&self.lose_claims) {
            true => Err(lost()),
            false => Ok(()),
        }
    }
    fn after_release(&self) -> Result<(), StoreError> {
        match take(&self.lose_releases) {
            true => Err(lost()),
            false => Ok(()),
        }
    }
}

fn lost() -> StoreError {
    StoreError::Database("connection reset after COMMIT (test)".into())
}

/// Takes one from `counter` if it is not zero.
fn take(counter: &AtomicUsize) -> bool {
    counter
        .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// Counts the runs executing at once and the highest count seen.
#[derive(Clone, Default)]
struct Busy {
    now: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

#[workflow]
impl Busy {
    #[step]
    async fn work(&self, n: u32) -> u32 {
        let now = self.now.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.now.fetch_sub(1, SeqCst);
        n * 2
    }
}

async fn engine(db: &TempDb, claims: usize, releases: usize, max_runs: usize) -> DurableEngine {
    let store = Hooked {
        inner: SqliteStore::open(db).await.expect("open the store"),
        hooks: LostReplies {
            lose_claims: AtomicUsize::new(claims),
            lose_releases: AtomicUsize::new(releases),
        },
    };
    DurableEngine::with_options(store, WorkerOptions::default().max_runs(max_runs))
}

/// Waits for every run's result, failing after `limit`.
async fn results(engine: &DurableEngine, ids: &[RunId], limit: Duration) -> Vec<u32> {
    let all = futures::future::join_all(ids.iter().map(|id| engine.wait::<Busy>(id)));
    tokio::time::timeout(limit, all)
        .await
        .expect("every run finishes: none is stranded")
        .into_iter()
        .map(|r| r.expect("run succeeds"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_whose_reply_was_lost_are_given_back_and_run() {
    let db = TempDb::new("claims");
    let engine = engine(&db, 2, 0, 1000).await;
    let wf = Busy::default();
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(engine.start(&wf, n).await.unwrap().id().clone());
    }
    let out = results(&engine, &ids, Duration::from_secs(30)).await;
    assert_eq!(out, (0..20).map(|n| n * 2).collect::<Vec<_>>());
    let claimed = RunFilter {
        status: Some(RunStatus::Claimed),
        ..RunFilter::default()
    };
    assert!(engine.list(&claimed).await.unwrap().runs.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_whose_reply_was_lost_strand_nothing() {
    let db = TempDb::new("releases");
    // Every claim is lost first (its runs must be given back, and the first release of those
    // loses its reply too), then everything works.
    let engine = engine(&db, 1, 1, 1000).await;
    let wf = Busy::default();
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(engine.start(&wf, n).await.unwrap().id().clone());
    }
    let out = results(&engine, &ids, Duration::from_secs(30)).await;
    assert_eq!(out, (0..10).map(|n| n * 2).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_runs_holds_and_a_full_worker_claims_as_soon_as_a_run_ends() {
    let db = TempDb::new("max-runs");
    let engine = engine(&db, 0, 0, 2).await;
    let wf = Busy::default();
    let mut ids = Vec::new();
    for n in 0..40 {
        ids.push(engine.start(&wf, n).await.unwrap().id().clone());
    }
    let started = Instant::now();
    let out = results(&engine, &ids, Duration::from_secs(60)).await;
    let took = started.elapsed();
    assert_eq!(out, (0..40).map(|n| n * 2).collect::<Vec<_>>());
    assert!(
        wf.most.load(SeqCst) <= 2,
        "{} runs executed at once with max_runs 2",
        wf.most.load(SeqCst)
    );
    // Not a timing assertion: reported, so a regression to polling shows in the output.
    println!("40 runs of 20 ms with max_runs 2 took {took:?} (20 rounds: >= 400 ms)");
}
