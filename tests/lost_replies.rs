//! A write whose commit succeeded but whose reply was lost (the connection dropped after
//! COMMIT) must not strand its runs: a claim the worker never saw, or a release it thinks
//! failed, leaves runs claimed by a live worker that does not execute them; the worker finds
//! and gives them back. Also: `max_runs` holds while claimed runs are still starting, and a
//! full worker claims again as soon as one of its runs ends.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use workflow_core::prelude::*;
use workflow_core::store::{
    Claim, ClaimRequest, ClaimedRun, JournalRecord, NewRun, Park, Parked, QueueConfig, RunEnd,
    RunFilter, RunPage, RunRecord, SqliteStore, Store, StoreError, WorkerId, WorkerRegistration,
};
use workflow_core::WorkerOptions;

/// An SQLite store whose next `lose_claims` claims (and `lose_releases` releases) commit and
/// then answer with a connection error, as if the reply was lost.
struct LostReplies {
    inner: SqliteStore,
    lose_claims: AtomicUsize,
    lose_releases: AtomicUsize,
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

impl Store for LostReplies {
    fn create_run<'a>(&'a self, run: &'a NewRun) -> BoxFuture<'a, Result<RunRecord, StoreError>> {
        self.inner.create_run(run)
    }
    fn record_audit<'a>(
        &'a self,
        record: &'a workflow_core::store::AuditRecord,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.record_audit(record)
    }
    fn list_audit(
        &self,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<workflow_core::store::AuditRecord>, StoreError>> {
        self.inner.list_audit(limit)
    }
    fn purge<'a>(
        &'a self,
        finished_before: std::time::SystemTime,
        limit: u32,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        self.inner.purge(finished_before, limit)
    }
    fn journal_times<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<workflow_core::store::CommitTimes, StoreError>> {
        self.inner.journal_times(run_id)
    }
    fn reopen<'a>(
        &'a self,
        run_id: &'a RunId,
        rewound: &'a workflow_core::JournalEvent,
    ) -> BoxFuture<'a, Result<RunStatus, StoreError>> {
        self.inner.reopen(run_id, rewound)
    }
    fn load_run<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>> {
        self.inner.load_run(run_id)
    }
    fn list<'a>(&'a self, filter: &'a RunFilter) -> BoxFuture<'a, Result<RunPage, StoreError>> {
        self.inner.list(filter)
    }
    fn journal<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Vec<JournalRecord>, StoreError>> {
        self.inner.journal(run_id)
    }
    fn send_signal<'a>(
        &'a self,
        run_id: &'a RunId,
        name: &'a str,
        payload: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.send_signal(run_id, name, payload)
    }
    fn has_signal<'a>(
        &'a self,
        run_id: &'a RunId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.inner.has_signal(run_id, name)
    }
    fn request_cancel<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<RunStatus, StoreError>> {
        self.inner.request_cancel(run_id)
    }
    fn set_queue<'a>(&'a self, config: &'a QueueConfig) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.set_queue(config)
    }
    fn register_worker<'a>(
        &'a self,
        registration: &'a WorkerRegistration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.register_worker(registration)
    }
    fn heartbeat<'a>(
        &'a self,
        worker: &'a WorkerId,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<RunId>, StoreError>> {
        self.inner.heartbeat(worker, lease)
    }
    fn deregister_worker<'a>(
        &'a self,
        worker: &'a WorkerId,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.deregister_worker(worker)
    }
    fn list_workers(&self) -> BoxFuture<'_, Result<Vec<WorkerId>, StoreError>> {
        self.inner.list_workers()
    }
    fn reap_expired(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.inner.reap_expired()
    }
    fn claim<'a>(
        &'a self,
        worker: &'a WorkerId,
        request: &'a ClaimRequest,
    ) -> BoxFuture<'a, Result<Vec<ClaimedRun>, StoreError>> {
        Box::pin(async move {
            let claimed = self.inner.claim(worker, request).await?;
            if !claimed.is_empty() && take(&self.lose_claims) {
                return Err(lost());
            }
            Ok(claimed)
        })
    }
    fn claim_run<'a>(
        &'a self,
        worker: &'a WorkerId,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Option<ClaimedRun>, StoreError>> {
        self.inner.claim_run(worker, run_id)
    }
    fn append<'a>(
        &'a self,
        claim: &'a Claim,
        records: Vec<JournalRecord>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.append(claim, records)
    }
    fn consume_signal<'a>(
        &'a self,
        claim: &'a Claim,
        seq: u64,
        step: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        self.inner.consume_signal(claim, seq, step, name)
    }
    fn set_waiting<'a>(
        &'a self,
        claim: &'a Claim,
        waiting_for: Option<String>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.set_waiting(claim, waiting_for)
    }
    fn park<'a>(
        &'a self,
        claim: &'a Claim,
        park: &'a Park,
    ) -> BoxFuture<'a, Result<Parked, StoreError>> {
        self.inner.park(claim, park)
    }
    fn release<'a>(&'a self, claim: &'a Claim) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.inner.release(claim).await?;
            if take(&self.lose_releases) {
                return Err(lost());
            }
            Ok(())
        })
    }
    fn finish<'a>(
        &'a self,
        claim: &'a Claim,
        end: &'a RunEnd,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.finish(claim, end)
    }
}

/// A store file in the temp dir, removed (with its WAL files) on drop.
struct TempDb(std::path::PathBuf);

impl TempDb {
    fn new(name: &str) -> Self {
        TempDb(std::env::temp_dir().join(format!("workflow-lost-{name}-{}.db", std::process::id())))
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
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
    let store = LostReplies {
        inner: SqliteStore::open(&db.0).await.expect("open the store"),
        lose_claims: AtomicUsize::new(claims),
        lose_releases: AtomicUsize::new(releases),
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
