//! The `Store` contract, checked on the trait directly (no engine): one generic async function
//! per contract, run against SQLite (a temp file) always and against PostgreSQL when
//! `WORKFLOW_TEST_POSTGRES_URL` is set. Each PostgreSQL test gets a schema of its own (a fresh
//! `search_path`), so the tests run in parallel. With `WORKFLOW_REQUIRE_POSTGRES=1` a missing
//! URL fails the PostgreSQL tests instead of skipping them; a URL that is set but unreachable
//! always fails them.
//!
//! ```text
//! cargo test --test store_contract                      # SQLite only
//! eval "$(bash scripts/postgres.sh start | tail -n 1)"
//! cargo test --test store_contract                      # SQLite and PostgreSQL
//! ```

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sqlx::{Connection, PgConnection, SqliteConnection};
use workflow_core::store::{
    Claim, ClaimRequest, ClaimedRun, DefinitionKey, JournalRecord, NewRun, Park, Parked,
    PostgresStore, QueueConfig, RunEnd, RunFilter, RunStatus, SqliteStore, Store, StoreError,
    StoredDefinition, WorkerId, WorkerRegistration,
};
use workflow_core::{JournalEvent, RunId};

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

type DynStore = Arc<dyn Store>;

/// Where a fixture's store lives.
enum Backend {
    /// A store file in a directory of its own (removed on drop).
    Sqlite { dir: PathBuf, path: PathBuf },
    /// A schema of its own in the test database; `url` selects it through `search_path`.
    Postgres {
        server_url: String,
        url: String,
        schema: String,
    },
}

/// A fresh, empty store and the means to open more stores on the same database and to tamper
/// with its rows.
struct Fixture {
    backend: Backend,
    store: DynStore,
}

fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, SeqCst)
    )
}

/// The server URL for the PostgreSQL tests; `None` (skip) when unset and not required.
fn postgres_url() -> Option<String> {
    let url = std::env::var("WORKFLOW_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let required = std::env::var("WORKFLOW_REQUIRE_POSTGRES").as_deref() == Ok("1");
    match url {
        Some(url) => Some(url),
        None if required => panic!(
            "WORKFLOW_REQUIRE_POSTGRES=1 but WORKFLOW_TEST_POSTGRES_URL is not set \
             (start a server with `bash scripts/postgres.sh start`)"
        ),
        None => {
            eprintln!("skipped: WORKFLOW_TEST_POSTGRES_URL is not set");
            None
        }
    }
}

/// `url` with its `search_path` set to `schema`.
fn with_schema(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options[search_path]={schema}")
}

async fn admin(url: &str) -> PgConnection {
    PgConnection::connect(url).await.unwrap_or_else(|e| {
        panic!("WORKFLOW_TEST_POSTGRES_URL is set but the server cannot be reached: {e}")
    })
}

impl Fixture {
    async fn sqlite() -> Fixture {
        let dir = std::env::temp_dir().join(unique("wf-contract"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("store.db");
        let store = SqliteStore::open(&path).await.unwrap();
        Fixture {
            backend: Backend::Sqlite { dir, path },
            store: Arc::new(store),
        }
    }

    async fn postgres() -> Option<Fixture> {
        let server_url = postgres_url()?;
        let schema = unique("wf_contract");
        let mut conn = admin(&server_url).await;
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let url = with_schema(&server_url, &schema);
        let store = PostgresStore::connect(&url).await.unwrap();
        Some(Fixture {
            backend: Backend::Postgres {
                server_url,
                url,
                schema,
            },
            store: Arc::new(store),
        })
    }

    /// Another store over the same database: what another process would open.
    async fn open_another(&self) -> DynStore {
        match &self.backend {
            Backend::Sqlite { path, .. } => Arc::new(SqliteStore::open(path).await.unwrap()),
            Backend::Postgres { url, .. } => Arc::new(PostgresStore::connect(url).await.unwrap()),
        }
    }

    /// Drops the PostgreSQL schema (SQLite files go on drop).
    async fn cleanup(self) {
        if let Backend::Postgres {
            server_url, schema, ..
        } = &self.backend
        {
            drop(self.store.clone());
            let mut conn = admin(server_url).await;
            let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&mut conn)
                .await;
        }
    }

    /// Flips the low bit of byte `at` of a bytes column, directly in the database.
    async fn flip_byte(
        &self,
        table: &str,
        column: &str,
        run_id: &RunId,
        seq: Option<u64>,
        at: usize,
    ) {
        let filter = if seq.is_some() {
            " AND seq = {seq}"
        } else {
            ""
        };
        match &self.backend {
            Backend::Sqlite { path, .. } => {
                let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .unwrap();
                let filter = filter.replace("{seq}", "?2");
                let select = format!("SELECT {column} FROM {table} WHERE run_id = ?1{filter}");
                let mut query = sqlx::query_scalar::<_, Vec<u8>>(&select).bind(run_id.as_str());
                if let Some(seq) = seq {
                    query = query.bind(seq as i64);
                }
                let mut bytes = query.fetch_one(&mut conn).await.unwrap();
                bytes[at] ^= 1;
                let update = format!("UPDATE {table} SET {column} = ?3 WHERE run_id = ?1{filter}");
                sqlx::query(&update)
                    .bind(run_id.as_str())
                    .bind(seq.map(|s| s as i64))
                    .bind(bytes)
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            Backend::Postgres { url, .. } => {
                let mut conn = PgConnection::connect(url).await.unwrap();
                // Every parameter must appear in the statement.
                let filter = match seq {
                    Some(_) => " AND seq = $2",
                    None => " AND $2::BIGINT IS NULL",
                };
                let update = format!(
                    "UPDATE {table} SET {column} = set_byte({column}, $3, get_byte({column}, $3) # 1)
                     WHERE run_id = $1{filter}"
                );
                let changed = sqlx::query(&update)
                    .bind(run_id.as_str())
                    .bind(seq.map(|s| s as i64))
                    .bind(at as i32)
                    .execute(&mut conn)
                    .await
                    .unwrap()
                    .rows_affected();
                assert_eq!(changed, 1);
            }
        }
    }

    /// Runs one statement with the run id as its only parameter (`$1` in PostgreSQL, `?1` in
    /// SQLite: write `$1`).
    async fn execute(&self, sql: &str, run_id: &RunId) {
        match &self.backend {
            Backend::Sqlite { path, .. } => {
                let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .unwrap();
                sqlx::query(&sql.replace("$1", "?1"))
                    .bind(run_id.as_str())
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            Backend::Postgres { url, .. } => {
                let mut conn = PgConnection::connect(url).await.unwrap();
                sqlx::query(sql)
                    .bind(run_id.as_str())
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Backend::Sqlite { dir, .. } = &self.backend {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Runs each contract against SQLite (`sqlite::name`) and PostgreSQL (`postgres::name`).
macro_rules! contracts {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let fixture = super::Fixture::sqlite().await;
                    super::$name(&fixture).await;
                    fixture.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(fixture) = super::Fixture::postgres().await else { return };
                    super::$name(&fixture).await;
                    fixture.cleanup().await;
                }
            )*
        }
    };
}

contracts!(
    create_is_idempotent,
    claims_oldest_first_once,
    claim_run_takes_one_claimable_run,
    stale_claims_are_fenced,
    park_then_wake_by_signal,
    park_is_a_compare_and_swap,
    cancel_is_seen_by_heartbeat_and_wakes_parked_runs,
    expired_workers_are_reaped,
    claims_only_listed_definitions,
    queue_concurrency_is_never_exceeded,
    full_queue_does_not_hold_back_others,
    queue_rate_is_never_exceeded,
    list_pages_and_filters,
    every_journal_event_round_trips,
    one_failing_write_fails_alone,
    appends_commit_in_queue_order_and_never_leave_a_gap,
    concurrent_signals_are_each_consumed_once,
    corrupt_rows_are_reported,
    finish_records_the_result,
    queues_and_definitions_are_listed,
);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A hash with the top bit set: stored as a signed 64-bit integer, it must come back intact.
const HASH: u64 = u64::MAX - 41;

fn run_of(workflow: &str, hash: u64, queue: &str) -> NewRun {
    NewRun {
        run_id: RunId::generate(),
        workflow: workflow.to_owned(),
        version: 3,
        definition_hash: hash,
        queue: queue.to_owned(),
        deadline_at: Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_900_000_000_123)),
        input: b"{\"order\":42}".to_vec(),
        trace_context: None,
    }
}

fn new_run() -> NewRun {
    run_of("checkout", HASH, "default")
}

fn every(defs: &[(&str, u64)], limit: u32) -> ClaimRequest {
    ClaimRequest {
        definitions: defs
            .iter()
            .map(|(workflow, hash)| DefinitionKey {
                workflow: (*workflow).to_owned(),
                hash: *hash,
            })
            .collect(),
        limit,
    }
}

fn checkout(limit: u32) -> ClaimRequest {
    every(&[("checkout", HASH)], limit)
}

async fn worker(store: &DynStore, lease: Duration) -> WorkerId {
    let worker = WorkerId::generate();
    store
        .register_worker(&WorkerRegistration {
            worker: worker.clone(),
            lease,
        })
        .await
        .unwrap();
    worker
}

async fn long_lived(store: &DynStore) -> WorkerId {
    worker(store, Duration::from_secs(600)).await
}

async fn create(store: &DynStore, run: NewRun) -> RunId {
    store.create_run(&run).await.unwrap().summary.run_id
}

async fn status(store: &DynStore, run_id: &RunId) -> RunStatus {
    store
        .load_run(run_id)
        .await
        .unwrap()
        .unwrap()
        .summary
        .status
}

fn step(name: &str, output: &[u8]) -> JournalEvent {
    JournalEvent::StepCompleted {
        step: name.to_owned(),
        output: output.to_vec(),
    }
}

fn record(seq: u64, event: JournalEvent) -> JournalRecord {
    JournalRecord { seq, event }
}

fn park_on_signal(seen_signal_seq: u64) -> Park {
    Park {
        wake_at: None,
        waiting_for: Some("approve".into()),
        seen_signal_seq,
    }
}

fn completed(output: &[u8]) -> RunEnd {
    RunEnd {
        status: RunStatus::Completed,
        output: Some(output.to_vec()),
        error: None,
    }
}

#[track_caller]
fn assert_lost<T: std::fmt::Debug>(result: Result<T, StoreError>, claim: &Claim) {
    match result {
        Err(StoreError::LeaseLost { run_id, epoch }) => {
            assert_eq!((&run_id, epoch), (&claim.run_id, claim.epoch));
        }
        other => panic!(
            "expected LeaseLost for epoch {}, got {other:?}",
            claim.epoch
        ),
    }
}

/// Every write a claim can make, each expected to be refused with `LeaseLost`.
async fn assert_fenced(store: &DynStore, claim: &Claim) {
    assert_lost(
        store.append(claim, vec![record(0, step("a", b"1"))]).await,
        claim,
    );
    assert_lost(store.consume_signal(claim, 0, "a", "approve").await, claim);
    assert_lost(
        store.set_waiting(claim, Some("approve".into())).await,
        claim,
    );
    assert_lost(store.park(claim, &park_on_signal(0)).await, claim);
    assert_lost(store.release(claim).await, claim);
    assert_lost(store.finish(claim, &completed(b"1")).await, claim);
}

async fn claim_one(store: &DynStore, worker: &WorkerId) -> ClaimedRun {
    let mut claimed = store.claim(worker, &checkout(1)).await.unwrap();
    assert_eq!(claimed.len(), 1, "expected one claimable run");
    claimed.pop().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Contracts
// ---------------------------------------------------------------------------------------------

async fn create_is_idempotent(f: &Fixture) {
    let store = &f.store;
    let run = new_run();
    let first = store.create_run(&run).await.unwrap();
    let s = &first.summary;
    assert_eq!(s.run_id, run.run_id);
    assert_eq!(
        (
            s.workflow.as_str(),
            s.version,
            s.definition_hash,
            s.queue.as_str()
        ),
        ("checkout", 3, HASH, "default")
    );
    assert_eq!(s.status, RunStatus::Ready);
    assert_eq!((s.epoch, s.claims, s.signal_seq), (0, 0, 0));
    assert_eq!(
        (s.owner.clone(), s.wake_at, s.cancel_requested),
        (None, None, false)
    );
    assert_eq!(s.deadline_at, run.deadline_at);
    assert_eq!(first.input, run.input);
    assert_eq!((first.output.clone(), first.error.clone()), (None, None));

    // The same id again, even with another input: the stored run, unchanged.
    let again = NewRun {
        input: b"other".to_vec(),
        ..run.clone()
    };
    let second = store.create_run(&again).await.unwrap();
    assert_eq!(second.input, run.input);
    assert_eq!(second.summary.created_seq, first.summary.created_seq);
    let page = store.list(&RunFilter::default()).await.unwrap();
    assert_eq!(page.runs.len(), 1);

    let loaded = store.load_run(&run.run_id).await.unwrap().unwrap();
    assert_eq!(loaded.input, run.input);
    assert_eq!(loaded.summary.created_seq, first.summary.created_seq);
    assert!(store
        .load_run(&RunId::from("no-such-run"))
        .await
        .unwrap()
        .is_none());

    // Creating one id from two stores at once: one run.
    let other = f.open_another().await;
    let run = new_run();
    let (a, b) = tokio::join!(store.create_run(&run), other.create_run(&run));
    assert_eq!(
        a.unwrap().summary.created_seq,
        b.unwrap().summary.created_seq
    );
}

async fn claims_oldest_first_once(f: &Fixture) {
    let store = &f.store;
    let ids = [
        create(store, new_run()).await,
        create(store, new_run()).await,
        create(store, new_run()).await,
    ];
    let w = long_lived(store).await;
    let first = store.claim(&w, &checkout(2)).await.unwrap();
    let claimed: Vec<_> = first.iter().map(|c| c.claim.run_id.clone()).collect();
    assert_eq!(claimed, ids[..2]);
    for c in &first {
        assert_eq!(c.claim.worker, w);
        assert_eq!(c.claim.epoch, 1);
        let s = &c.run.summary;
        assert_eq!((s.status, s.epoch, s.claims), (RunStatus::Claimed, 1, 1));
        assert_eq!(s.owner.as_ref(), Some(&w));
        assert_eq!(c.run.input, new_run().input);
    }
    let second = store.claim(&w, &checkout(5)).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].claim.run_id, ids[2]);
    assert!(store.claim(&w, &checkout(5)).await.unwrap().is_empty());
    assert_eq!(status(store, &ids[0]).await, RunStatus::Claimed);

    // Several workers in several stores claiming at once: every run exactly once.
    let more: Vec<RunId> = {
        let mut more = Vec::new();
        for _ in 0..40 {
            more.push(create(store, new_run()).await);
        }
        more
    };
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let other = f.open_another().await;
        tasks.push(tokio::spawn(async move {
            let w = long_lived(&other).await;
            let mut mine = Vec::new();
            loop {
                let got = other.claim(&w, &checkout(3)).await.unwrap();
                if got.is_empty() {
                    break;
                }
                mine.extend(got.into_iter().map(|c| c.claim.run_id));
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    assert_eq!(all.len(), more.len(), "each run claimed once");
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(unique.len(), more.len());
}

async fn claim_run_takes_one_claimable_run(f: &Fixture) {
    let store = &f.store;
    let w = long_lived(store).await;
    let a = create(store, new_run()).await;
    let b = create(store, new_run()).await;
    // Any definition: claim_run does not filter.
    let odd = create(store, run_of("elsewhere", 7, "default")).await;

    let claimed = store.claim_run(&w, &b).await.unwrap().expect("b is ready");
    assert_eq!(claimed.claim.run_id, b);
    assert_eq!(claimed.claim.epoch, 1);
    assert_eq!(claimed.run.summary.status, RunStatus::Claimed);
    assert!(
        store.claim_run(&w, &b).await.unwrap().is_none(),
        "claimed already"
    );
    assert!(store.claim_run(&w, &odd).await.unwrap().is_some());
    assert!(store
        .claim_run(&w, &RunId::from("no-such-run"))
        .await
        .unwrap()
        .is_none());

    // A parked run that is not due (no wake_at, or one in the future) is not claimable, by
    // claim_run either (the same rule as claim); once due, it is.
    let parked = store.claim_run(&w, &a).await.unwrap().unwrap();
    let seen = parked.run.summary.signal_seq;
    assert_eq!(
        store
            .park(&parked.claim, &park_on_signal(seen))
            .await
            .unwrap(),
        Parked::Parked
    );
    assert!(store.claim_run(&w, &a).await.unwrap().is_none());
    let later = store.claim_run(&w, &create(store, new_run()).await).await;
    let later = later.unwrap().unwrap();
    let in_an_hour = Park {
        wake_at: Some(SystemTime::now() + Duration::from_secs(3600)),
        waiting_for: None,
        seen_signal_seq: 0,
    };
    assert_eq!(
        store.park(&later.claim, &in_an_hour).await.unwrap(),
        Parked::Parked
    );
    assert!(store
        .claim_run(&w, &later.claim.run_id)
        .await
        .unwrap()
        .is_none());
    let due = store.claim_run(&w, &create(store, new_run()).await).await;
    let due = due.unwrap().unwrap();
    let a_second_ago = Park {
        wake_at: Some(SystemTime::now() - Duration::from_secs(1)),
        waiting_for: None,
        seen_signal_seq: 0,
    };
    assert_eq!(
        store.park(&due.claim, &a_second_ago).await.unwrap(),
        Parked::Parked
    );
    let again = store
        .claim_run(&w, &due.claim.run_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.claim.epoch, 3, "claim, park, claim");
    assert_eq!(again.run.summary.wake_at, None);
    assert_eq!(again.run.summary.claims, 2);
}

async fn stale_claims_are_fenced(f: &Fixture) {
    let store = &f.store;
    let w = long_lived(store).await;
    let run_id = create(store, new_run()).await;
    let first = claim_one(store, &w).await.claim;
    assert_eq!(first.epoch, 1);
    store
        .append(&first, vec![record(0, step("a", b"1"))])
        .await
        .unwrap();

    // Released: every write of the old claim is refused.
    store.release(&first).await.unwrap();
    let s = store.load_run(&run_id).await.unwrap().unwrap().summary;
    assert_eq!((s.status, s.epoch, s.owner), (RunStatus::Ready, 2, None));
    assert_fenced(store, &first).await;

    // Claimed again, by another worker in another store: the new claim writes, the old does not.
    let other = f.open_another().await;
    let w2 = long_lived(&other).await;
    let second = claim_one(&other, &w2).await.claim;
    assert_eq!(second.epoch, 3);
    assert_fenced(store, &first).await;
    // The right epoch with the wrong owner is refused too.
    let impostor = Claim {
        worker: w.clone(),
        ..second.clone()
    };
    assert_fenced(store, &impostor).await;
    store
        .append(&second, vec![record(1, step("b", b"2"))])
        .await
        .unwrap();
    let journal = store.journal(&run_id).await.unwrap();
    assert_eq!(journal.len(), 2, "the refused writes left nothing behind");

    // Finished: the claim is spent.
    store.finish(&second, &completed(b"out")).await.unwrap();
    assert_fenced(store, &second).await;
    let s = store.load_run(&run_id).await.unwrap().unwrap().summary;
    assert_eq!((s.status, s.epoch), (RunStatus::Completed, 4));
}

async fn park_then_wake_by_signal(f: &Fixture) {
    let store = &f.store;
    let w = long_lived(store).await;
    let run_id = create(store, new_run()).await;
    let claimed = claim_one(store, &w).await;
    let claim = claimed.claim.clone();
    store
        .set_waiting(&claim, Some("approve".into()))
        .await
        .unwrap();
    let listed = store.list(&RunFilter::default()).await.unwrap().runs;
    assert_eq!(listed[0].waiting_for.as_deref(), Some("approve"));

    assert_eq!(
        store.park(&claim, &park_on_signal(0)).await.unwrap(),
        Parked::Parked
    );
    let s = store.load_run(&run_id).await.unwrap().unwrap().summary;
    assert_eq!(
        (s.status, s.epoch, s.owner.clone()),
        (RunStatus::Waiting, 2, None)
    );
    assert_eq!(
        (s.wake_at, s.waiting_for.as_deref()),
        (None, Some("approve"))
    );
    assert_fenced(store, &claim).await;
    assert!(
        store.claim(&w, &checkout(5)).await.unwrap().is_empty(),
        "parked on a signal: not claimable"
    );

    assert!(!store.has_signal(&run_id, "approve").await.unwrap());
    let before = SystemTime::now() - Duration::from_secs(5);
    store
        .send_signal(&run_id, "approve", b"\"yes\"".to_vec())
        .await
        .unwrap();
    assert!(store.has_signal(&run_id, "approve").await.unwrap());
    assert!(!store.has_signal(&run_id, "reject").await.unwrap());
    let s = store.load_run(&run_id).await.unwrap().unwrap().summary;
    assert_eq!((s.status, s.signal_seq), (RunStatus::Waiting, 1));
    let wake_at = s.wake_at.expect("a signal makes a parked run due");
    assert!(wake_at > before && wake_at < SystemTime::now() + Duration::from_secs(5));

    let woken = claim_one(store, &w).await;
    assert_eq!(woken.claim.epoch, 3);
    let s = &woken.run.summary;
    assert_eq!(
        (s.signal_seq, s.wake_at, s.waiting_for.clone()),
        (1, None, None)
    );
    let claim = woken.claim;
    assert_eq!(
        store
            .consume_signal(&claim, 0, "wait_approval", "approve")
            .await
            .unwrap(),
        Some(b"\"yes\"".to_vec())
    );
    assert_eq!(
        store
            .consume_signal(&claim, 1, "wait_approval", "approve")
            .await
            .unwrap(),
        None,
        "consumed exactly once"
    );
    assert!(!store.has_signal(&run_id, "approve").await.unwrap());
    assert_eq!(
        store.journal(&run_id).await.unwrap(),
        vec![record(
            0,
            JournalEvent::SignalConsumed {
                step: "wait_approval".into(),
                payload: b"\"yes\"".to_vec()
            }
        )]
    );

    // A timer: parked with a wake_at in the past, the run is claimable at once.
    let timer = Park {
        wake_at: Some(SystemTime::now() - Duration::from_millis(10)),
        waiting_for: None,
        seen_signal_seq: 1,
    };
    assert_eq!(store.park(&claim, &timer).await.unwrap(), Parked::Parked);
    assert_eq!(claim_one(store, &w).await.claim.epoch, 5);
}

async fn park_is_a_compare_and_swap(f: &Fixture) {
    let store = &f.store;
    let w = long_lived(store).await;
    let run_id = create(store, new_run()).await;
    let claim = claim_one(store, &w).await.claim;
    // A signal arrives after the worker looked (it saw signal_seq 0).
    let other = f.open_another().await;
    other
        .send_signal(&run_id, "approve", b"1".to_vec())
        .await
        .unwrap();
    assert_eq!(
        store.park(&claim, &park_on_signal(0)).await.unwrap(),
        Parked::Woken { signal_seq: 1 }
    );
    let s = store.load_run(&run_id).await.unwrap().unwrap().summary;
    assert_eq!(
        (s.status, s.epoch, s.owner.as_ref()),
        (RunStatus::Claimed, 1, Some(&w)),
        "still claimed: the worker goes on"
    );
    assert_eq!(
        store.park(&claim, &park_on_signal(1)).await.unwrap(),
        Parked::Parked
    );

    // A cancel (it wakes the parked run), then a park: woken, and a cancelled run never
    // parks again.
    assert_eq!(
        store.request_cancel(&run_id).await.unwrap(),
        RunStatus::Waiting
    );
    let claim = claim_one(store, &w).await.claim;
    assert_eq!(claim.epoch, 3);
    assert_eq!(
        store.park(&claim, &park_on_signal(2)).await.unwrap(),
        Parked::Woken { signal_seq: 2 }
    );

    // Racing signals against parks: never parked past a signal it did not see.
    for round in 0..20u64 {
        let run_id = create(store, new_run()).await;
        let claimed = store.claim_run(&w, &run_id).await.unwrap().unwrap();
        let signal = other.send_signal(&run_id, "approve", round.to_le_bytes().to_vec());
        let park_request = park_on_signal(0);
        let park = store.park(&claimed.claim, &park_request);
        let (signal, parked) = tokio::join!(signal, park);
        signal.unwrap();
        let s = store.load_run(&run_id).await.unwrap().unwrap().summary;
        match parked.unwrap() {
            Parked::Parked => {
                // Parked first: the signal then made it due.
                assert_eq!(s.status, RunStatus::Waiting);
                assert!(s.wake_at.is_some(), "round {round}: a lost wake-up");
            }
            Parked::Woken { signal_seq } => {
                assert_eq!(signal_seq, 1);
                assert_eq!(s.status, RunStatus::Claimed);
            }
        }
    }
}

async fn cancel_is_seen_by_heartbeat_and_wakes_parked_runs(f: &Fixture) {
    let store = &f.store;
    let w = long_lived(store).await;
    let running = create(store, new_run()).await;
    let claim = claim_one(store, &w).await.claim;
    assert!(store
        .heartbeat(&w, Duration::from_secs(600))
        .await
        .unwrap()
        .is_empty());
    let other = f.open_another().await;
    assert_eq!(
        other.request_cancel(&running).await.unwrap(),
        RunStatus::Claimed
    );
    let s = store.load_run(&running).await.unwrap().unwrap().summary;
    assert!(s.cancel_requested);
    assert_eq!(
        (s.signal_seq, s.epoch, s.status),
        (1, 1, RunStatus::Claimed)
    );
    assert_eq!(
        store.heartbeat(&w, Duration::from_secs(600)).await.unwrap(),
        vec![running.clone()]
    );

    // A parked run is woken by a cancel.
    let parked = create(store, new_run()).await;
    let claimed = store.claim_run(&w, &parked).await.unwrap().unwrap();
    assert_eq!(
        store
            .park(&claimed.claim, &park_on_signal(0))
            .await
            .unwrap(),
        Parked::Parked
    );
    assert_eq!(
        store.request_cancel(&parked).await.unwrap(),
        RunStatus::Waiting
    );
    let again = store.claim_run(&w, &parked).await.unwrap().expect("woken");
    assert!(again.run.summary.cancel_requested);

    // A finished run is left as it is; an unknown one is an error.
    store
        .finish(
            &claim,
            &RunEnd {
                status: RunStatus::Cancelled,
                output: None,
                error: Some("cancelled".into()),
            },
        )
        .await
        .unwrap();
    let before = store.load_run(&running).await.unwrap().unwrap().summary;
    assert_eq!(
        store.request_cancel(&running).await.unwrap(),
        RunStatus::Cancelled
    );
    let after = store.load_run(&running).await.unwrap().unwrap().summary;
    assert_eq!(after.signal_seq, before.signal_seq);
    assert!(matches!(
        store.request_cancel(&RunId::from("no-such-run")).await,
        Err(StoreError::UnknownRun(_))
    ));
    assert!(matches!(
        store.send_signal(&running, "approve", b"1".to_vec()).await,
        Err(StoreError::RunFinished {
            status: RunStatus::Cancelled,
            ..
        })
    ));
    assert!(matches!(
        store
            .send_signal(&RunId::from("no-such-run"), "approve", b"1".to_vec())
            .await,
        Err(StoreError::UnknownRun(_))
    ));
}

async fn expired_workers_are_reaped(f: &Fixture) {
    let store = &f.store;
    let short = worker(store, Duration::from_millis(300)).await;
    let survivor = long_lived(store).await;
    let run_id = create(store, new_run()).await;
    let old = claim_one(store, &short).await.claim;
    store
        .append(&old, vec![record(0, step("a", b"1"))])
        .await
        .unwrap();
    assert_eq!(
        store.reap_expired().await.unwrap(),
        0,
        "the lease still runs"
    );
    let workers = store.list_workers().await.unwrap();
    assert!(workers.contains(&short) && workers.contains(&survivor));

    tokio::time::sleep(Duration::from_millis(700)).await;
    let other = f.open_another().await;
    assert_eq!(other.reap_expired().await.unwrap(), 1);
    assert_eq!(other.reap_expired().await.unwrap(), 0, "idempotent");
    let s = store.load_run(&run_id).await.unwrap().unwrap().summary;
    assert_eq!((s.status, s.epoch, s.owner), (RunStatus::Ready, 2, None));
    let workers = store.list_workers().await.unwrap();
    assert!(!workers.contains(&short) && workers.contains(&survivor));
    assert!(matches!(
        store.heartbeat(&short, Duration::from_secs(1)).await,
        Err(StoreError::WorkerLost(w)) if w == short
    ));

    // The old claim's writes are refused; the new owner's are not.
    assert_fenced(store, &old).await;
    let new = claim_one(&other, &survivor).await.claim;
    assert_eq!(new.epoch, 3);
    assert_fenced(store, &old).await;
    other
        .append(&new, vec![record(1, step("b", b"2"))])
        .await
        .unwrap();
    assert_eq!(store.journal(&run_id).await.unwrap().len(), 2);

    // A worker that leaves gives its runs back at once.
    store.deregister_worker(&survivor).await.unwrap();
    let s = store.load_run(&run_id).await.unwrap().unwrap().summary;
    assert_eq!((s.status, s.epoch, s.owner), (RunStatus::Ready, 4, None));
    assert_fenced(store, &new).await;

    // A run claimed by a worker that no longer exists is taken back by the sweep too.
    let ghost = WorkerId::from("ghost/1/x/y");
    let claimed = store.claim(&ghost, &checkout(1)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(store.reap_expired().await.unwrap(), 1);
    assert_eq!(status(store, &run_id).await, RunStatus::Ready);
}

async fn claims_only_listed_definitions(f: &Fixture) {
    let store = &f.store;
    let w = long_lived(store).await;
    let a1 = create(store, run_of("a", 1, "default")).await;
    let a2 = create(store, run_of("a", 2, "default")).await;
    let b1 = create(store, run_of("b", 1, "default")).await;
    let top = create(store, run_of("a", u64::MAX, "default")).await;

    assert!(store.claim(&w, &every(&[], 10)).await.unwrap().is_empty());
    assert!(store
        .claim(&w, &every(&[("a", 1)], 0))
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .claim(&w, &every(&[("c", 1), ("a", 3)], 10))
        .await
        .unwrap()
        .is_empty());
    let ids = |claimed: Vec<ClaimedRun>| -> Vec<RunId> {
        claimed.into_iter().map(|c| c.claim.run_id).collect()
    };
    assert_eq!(
        ids(store.claim(&w, &every(&[("a", 1)], 10)).await.unwrap()),
        [a1]
    );
    assert_eq!(
        ids(store
            .claim(&w, &every(&[("b", 1), ("a", 2), ("b", 2)], 10))
            .await
            .unwrap()),
        [a2, b1]
    );
    assert_eq!(
        ids(store
            .claim(&w, &every(&[("a", u64::MAX)], 10))
            .await
            .unwrap()),
        [top]
    );
}

async fn queue_concurrency_is_never_exceeded(f: &Fixture) {
    const LIMIT: usize = 3;
    const RUNS: usize = 36;
    let store = &f.store;
    store
        .set_queue(&QueueConfig {
            queue: "narrow".into(),
            concurrency: Some(LIMIT as u32),
            rate_per_sec: None,
            burst: 1,
        })
        .await
        .unwrap();
    for _ in 0..RUNS {
        create(store, run_of("checkout", HASH, "narrow")).await;
    }
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut stores = Vec::new();
    for _ in 0..6 {
        stores.push(f.open_another().await);
    }
    let mut tasks = Vec::new();
    for (i, store) in stores.into_iter().enumerate() {
        let (in_flight, most, done) = (in_flight.clone(), most.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let w = long_lived(&store).await;
            let deadline = Instant::now() + Duration::from_secs(60);
            while done.load(SeqCst) < RUNS {
                assert!(Instant::now() < deadline, "the queue did not drain");
                let claimed = store.claim(&w, &checkout(2)).await.unwrap();
                // Counted after the claim committed and before the finish does: never more
                // than the store holds claimed.
                let now = in_flight.fetch_add(claimed.len(), SeqCst) + claimed.len();
                most.fetch_max(now, SeqCst);
                if claimed.is_empty() {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                }
                tokio::time::sleep(Duration::from_millis(3 + i as u64)).await;
                for c in claimed {
                    assert_eq!(c.run.summary.claims, 1, "claimed twice");
                    in_flight.fetch_sub(1, SeqCst);
                    store.finish(&c.claim, &completed(b"1")).await.unwrap();
                    done.fetch_add(1, SeqCst);
                }
            }
        }));
    }
    // Meanwhile the store itself never lists more than LIMIT claimed runs of the queue.
    let filter = RunFilter {
        status: Some(RunStatus::Claimed),
        queue: Some("narrow".into()),
        ..RunFilter::default()
    };
    let mut samples = 0;
    while done.load(SeqCst) < RUNS && tasks.iter().any(|t| !t.is_finished()) {
        let claimed = store.list(&filter).await.unwrap().runs.len();
        assert!(
            claimed <= LIMIT,
            "{claimed} claimed runs in a queue of {LIMIT}"
        );
        samples += 1;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for task in tasks {
        task.await.unwrap();
    }
    let most = most.load(SeqCst);
    assert!(most <= LIMIT, "{most} in flight in a queue of {LIMIT}");
    assert!(
        most >= 2,
        "the limit was never reached ({most}): a weak test"
    );
    assert!(samples > 0);
    let completed = RunFilter {
        status: Some(RunStatus::Completed),
        ..RunFilter::default()
    };
    assert_eq!(store.list(&completed).await.unwrap().runs.len(), RUNS);
}

async fn queues_and_definitions_are_listed(f: &Fixture) {
    let store = &f.store;
    let queues = [
        QueueConfig {
            queue: "b-limited".into(),
            concurrency: Some(3),
            rate_per_sec: None,
            burst: 1,
        },
        QueueConfig {
            queue: "a-rated".into(),
            concurrency: None,
            rate_per_sec: Some(2.5),
            burst: 4,
        },
    ];
    for queue in &queues {
        store.set_queue(queue).await.unwrap();
    }
    let listed = store.list_queues().await.unwrap();
    assert_eq!(listed, [queues[1].clone(), queues[0].clone()], "by name");
    let definition = StoredDefinition {
        workflow: "Listed".into(),
        version: 2,
        hash: HASH,
        canonical: "workflow Listed version 2 input u32\n".into(),
        signal_schemas: Default::default(),
    };
    store.put_definition(&definition).await.unwrap();
    store.put_definition(&definition).await.unwrap(); // idempotent
    assert_eq!(store.list_definitions().await.unwrap(), [definition]);
}

async fn full_queue_does_not_hold_back_others(f: &Fixture) {
    let store = &f.store;
    let w = long_lived(store).await;
    store
        .set_queue(&QueueConfig {
            queue: "one".into(),
            concurrency: Some(1),
            rate_per_sec: None,
            burst: 1,
        })
        .await
        .unwrap();
    let mut held_back = Vec::new();
    for _ in 0..5 {
        held_back.push(create(store, run_of("checkout", HASH, "one")).await);
    }
    let free = create(store, new_run()).await;
    let claimed: Vec<RunId> = store
        .claim(&w, &checkout(10))
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.claim.run_id)
        .collect();
    assert_eq!(claimed, [held_back[0].clone(), free]);
    assert!(store.claim(&w, &checkout(10)).await.unwrap().is_empty());
    assert!(
        store.claim_run(&w, &held_back[1]).await.unwrap().is_none(),
        "the queue is full"
    );

    // Parked runs do not count: parking the one claimed run frees the queue.
    let first = store
        .load_run(&held_back[0])
        .await
        .unwrap()
        .unwrap()
        .summary;
    let claim = Claim {
        run_id: first.run_id.clone(),
        worker: w.clone(),
        epoch: first.epoch,
    };
    assert_eq!(
        store.park(&claim, &park_on_signal(0)).await.unwrap(),
        Parked::Parked
    );
    assert!(store.claim_run(&w, &held_back[1]).await.unwrap().is_some());
}

async fn queue_rate_is_never_exceeded(f: &Fixture) {
    const RATE: f64 = 10.0;
    const BURST: u32 = 2;
    let store = &f.store;
    store
        .set_queue(&QueueConfig {
            queue: "slow".into(),
            concurrency: None,
            rate_per_sec: Some(RATE),
            burst: BURST,
        })
        .await
        .unwrap();
    for _ in 0..60 {
        create(store, run_of("checkout", HASH, "slow")).await;
    }
    let w = long_lived(store).await;
    let start = Instant::now();
    assert_eq!(
        store.claim(&w, &checkout(50)).await.unwrap().len(),
        BURST as usize,
        "a burst"
    );
    assert!(store.claim(&w, &checkout(50)).await.unwrap().is_empty());

    // Three stores claiming as fast as they can for a while.
    let claims = Arc::new(AtomicUsize::new(BURST as usize));
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let store = f.open_another().await;
        let claims = claims.clone();
        tasks.push(tokio::spawn(async move {
            let w = long_lived(&store).await;
            while start.elapsed() < Duration::from_millis(1_000) {
                let got = store.claim(&w, &checkout(50)).await.unwrap().len();
                claims.fetch_add(got, SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let claimed = claims.load(SeqCst);
    let most = f64::from(BURST) + RATE * elapsed + 1.0;
    assert!(
        (claimed as f64) <= most,
        "{claimed} claims in {elapsed:.2} s at {RATE}/s with bursts of {BURST}"
    );
    assert!(
        claimed as f64 >= RATE * 0.5,
        "only {claimed} claims in {elapsed:.2} s at {RATE}/s"
    );
}

async fn list_pages_and_filters(f: &Fixture) {
    let store = &f.store;
    let mut created = Vec::new();
    for i in 0..7 {
        let run = if i % 2 == 0 {
            run_of("a", 1, "q1")
        } else {
            run_of("b", 1, "q2")
        };
        created.push(create(store, run).await);
    }
    let w = long_lived(store).await;
    let claimed = store.claim_run(&w, &created[3]).await.unwrap().unwrap();

    let all = store.list(&RunFilter::default()).await.unwrap();
    assert_eq!(
        all.runs.iter().map(|r| &r.run_id).collect::<Vec<_>>(),
        created.iter().collect::<Vec<_>>()
    );
    assert_eq!(all.next, None);
    assert!(all.unreadable.is_empty());
    let seqs: Vec<u64> = all.runs.iter().map(|r| r.created_seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {seqs:?}"
    );
    let listed = &all.runs[3];
    assert_eq!(
        (
            listed.status,
            listed.owner.as_ref(),
            listed.epoch,
            listed.claims
        ),
        (RunStatus::Claimed, Some(&w), 1, 1)
    );
    assert_eq!(listed.epoch, claimed.claim.epoch);

    // Pages of 3: 3, 3, 1.
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list(&RunFilter {
                after,
                limit: 3,
                ..RunFilter::default()
            })
            .await
            .unwrap();
        pages.push(page.runs.len());
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, [3, 3, 1]);
    // A last page that is exactly full points at an empty one.
    let page = store
        .list(&RunFilter {
            limit: 7,
            ..RunFilter::default()
        })
        .await
        .unwrap();
    let empty = store
        .list(&RunFilter {
            after: page.next,
            limit: 7,
            ..RunFilter::default()
        })
        .await
        .unwrap();
    assert!(page.next.is_some() && empty.runs.is_empty() && empty.next.is_none());

    let count = |filter: RunFilter| async move { store.list(&filter).await.unwrap().runs.len() };
    assert_eq!(
        count(RunFilter {
            status: Some(RunStatus::Claimed),
            ..RunFilter::default()
        })
        .await,
        1
    );
    assert_eq!(
        count(RunFilter {
            status: Some(RunStatus::Ready),
            ..RunFilter::default()
        })
        .await,
        6
    );
    assert_eq!(
        count(RunFilter {
            workflow: Some("b".into()),
            ..RunFilter::default()
        })
        .await,
        3
    );
    assert_eq!(
        count(RunFilter {
            queue: Some("q1".into()),
            ..RunFilter::default()
        })
        .await,
        4
    );
    assert_eq!(
        count(RunFilter {
            workflow: Some("b".into()),
            queue: Some("q2".into()),
            status: Some(RunStatus::Ready),
            ..RunFilter::default()
        })
        .await,
        2
    );
    assert_eq!(
        count(RunFilter {
            workflow: Some("a".into()),
            queue: Some("q2".into()),
            ..RunFilter::default()
        })
        .await,
        0
    );
    assert_eq!(
        count(RunFilter {
            queue: Some("q1".into()),
            after: Some(all.runs[2].created_seq),
            ..RunFilter::default()
        })
        .await,
        2
    );
}

fn every_event() -> Vec<JournalEvent> {
    let at = |ms: u64| SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
    vec![
        step("charge", b"{\"cents\":12}"),
        step("empty", b""),
        JournalEvent::ItemCompleted {
            step: "ship".into(),
            item: u64::MAX,
            output: vec![0, 1, 2, 255],
        },
        JournalEvent::WaitStarted {
            step: "approve".into(),
            at: at(1_764_000_000_123),
        },
        JournalEvent::SignalConsumed {
            step: "approve".into(),
            payload: b"\"Approve\"".to_vec(),
        },
        JournalEvent::SignalTimedOut {
            step: "approve".into(),
        },
        JournalEvent::RetryScheduled {
            step: "charge".into(),
            item: None,
            attempt: 3,
            due: at(1_764_000_060_000),
        },
        JournalEvent::RetryScheduled {
            step: "ship".into(),
            item: Some(4),
            attempt: u32::MAX,
            due: at(0),
        },
        JournalEvent::Stopped {
            cause: "step `ship` failed: no carrier — «quoted» \u{1f680}".into(),
        },
        JournalEvent::Compensated {
            step: "charge".into(),
            completion: 2,
            error: None,
        },
        JournalEvent::Compensated {
            step: "charge".into(),
            completion: 0,
            error: Some("refund refused".into()),
        },
        JournalEvent::Compensated {
            step: "charge".into(),
            completion: 1,
            error: Some(String::new()),
        },
    ]
}

async fn every_journal_event_round_trips(f: &Fixture) {
    let store = &f.store;
    let w = long_lived(store).await;
    let run_id = create(store, new_run()).await;
    let claim = claim_one(store, &w).await.claim;
    let records: Vec<JournalRecord> = every_event()
        .into_iter()
        .enumerate()
        .map(|(seq, event)| record(seq as u64, event))
        .collect();
    let kinds: BTreeSet<&str> = records.iter().map(|r| r.event.kind()).collect();
    assert_eq!(kinds.len(), 8, "every kind: {kinds:?}");
    // In a few appends of several records each.
    for chunk in records.chunks(5) {
        store.append(&claim, chunk.to_vec()).await.unwrap();
    }
    assert_eq!(store.journal(&run_id).await.unwrap(), records);
    // Read by another store too.
    let other = f.open_another().await;
    assert_eq!(other.journal(&run_id).await.unwrap(), records);
    assert!(store
        .journal(&RunId::from("no-such-run"))
        .await
        .unwrap()
        .is_empty());
}

/// Appends are queued when they are made: several made before any is awaited commit in that
/// order; a record that would follow a missing one is refused, and nothing is written.
async fn appends_commit_in_queue_order_and_never_leave_a_gap(f: &Fixture) {
    let store = &f.store;
    let w = long_lived(store).await;
    create(store, new_run()).await;
    let c = claim_one(store, &w).await;
    let queued: Vec<_> = (0..20)
        .map(|seq| store.append(&c.claim, vec![record(seq, step("a", b"1"))]))
        .collect();
    for result in futures::future::join_all(queued).await {
        result.expect("queued appends commit in order");
    }
    match store
        .append(&c.claim, vec![record(21, step("b", b"2"))])
        .await
    {
        Err(StoreError::JournalGap { run_id, seq: 21 }) => assert_eq!(run_id, c.claim.run_id),
        other => panic!("expected JournalGap for record 21, got {other:?}"),
    }
    let journal = store.journal(&c.claim.run_id).await.unwrap();
    assert_eq!(
        journal.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (0..20).collect::<Vec<_>>()
    );
}

async fn one_failing_write_fails_alone(f: &Fixture) {
    let store = &f.store;
    let w = long_lived(store).await;
    let mut claims = Vec::new();
    for _ in 0..8 {
        create(store, new_run()).await;
    }
    for c in store.claim(&w, &checkout(8)).await.unwrap() {
        store
            .append(&c.claim, vec![record(0, step("a", b"1"))])
            .await
            .unwrap();
        claims.push(c.claim);
    }
    // Many writes at once (so they share a batch), one of them a duplicate record and one
    // under a stale claim: those two fail, every other one commits.
    let stale = Claim {
        epoch: 99,
        ..claims[0].clone()
    };
    let mut writes = Vec::new();
    for (i, claim) in claims.iter().enumerate() {
        let seq = if i == 3 { 0 } else { 1 };
        writes.push(store.append(claim, vec![record(seq, step("b", b"2"))]));
    }
    writes.push(store.append(&stale, vec![record(1, step("c", b"3"))]));
    let results = futures::future::join_all(writes).await;
    for (i, result) in results.iter().enumerate() {
        match i {
            3 => assert!(
                matches!(result, Err(StoreError::Database(_))),
                "duplicate record: {result:?}"
            ),
            8 => assert!(
                matches!(result, Err(StoreError::LeaseLost { .. })),
                "{result:?}"
            ),
            _ => assert!(result.is_ok(), "write {i}: {result:?}"),
        }
    }
    for (i, claim) in claims.iter().enumerate() {
        let journal = store.journal(&claim.run_id).await.unwrap();
        assert_eq!(journal.len(), if i == 3 { 1 } else { 2 }, "run {i}");
        assert_eq!(journal[0].event, step("a", b"1"), "the first record stays");
    }
    // The store still works after the failed batch.
    store.finish(&claims[3], &completed(b"ok")).await.unwrap();
}

async fn concurrent_signals_are_each_consumed_once(f: &Fixture) {
    const SIGNALS: usize = 40;
    let store = &f.store;
    let w = long_lived(store).await;
    let run_id = create(store, new_run()).await;
    let claim = claim_one(store, &w).await.claim;
    let other = f.open_another().await;
    let sends = (0..SIGNALS).map(|i| {
        let target = if i % 2 == 0 { store } else { &other };
        target.send_signal(&run_id, "item", (i as u64).to_le_bytes().to_vec())
    });
    for result in futures::future::join_all(sends).await {
        result.unwrap();
    }
    let s = store.load_run(&run_id).await.unwrap().unwrap().summary;
    assert_eq!(s.signal_seq, SIGNALS as u64);
    let mut seen = BTreeSet::new();
    let mut seq = 0;
    while let Some(payload) = store
        .consume_signal(&claim, seq, "collect", "item")
        .await
        .unwrap()
    {
        assert!(seen.insert(payload), "a signal consumed twice");
        seq += 1;
    }
    assert_eq!(seen.len(), SIGNALS);
    assert_eq!(store.journal(&run_id).await.unwrap().len(), SIGNALS);
}

async fn corrupt_rows_are_reported(f: &Fixture) {
    let store = &f.store;
    let w = long_lived(store).await;
    let run_id = create(store, new_run()).await;
    let claim = claim_one(store, &w).await.claim;
    let records: Vec<JournalRecord> = (0..4)
        .map(|seq| record(seq, step(&format!("s{seq}"), b"{\"value\":1234}")))
        .collect();
    store.append(&claim, records).await.unwrap();

    // A flipped bit in the payload of record #2.
    f.flip_byte("wf_journal", "payload", &run_id, Some(2), 3)
        .await;
    match store.journal(&run_id).await {
        Err(StoreError::Corrupt {
            run_id: bad,
            seq: Some(2),
            ..
        }) => assert_eq!(bad, run_id),
        other => panic!("expected a corrupt record #2, got {other:?}"),
    }
    // A record that is not a valid event (its checksum recomputed, so only decoding fails).
    let decodable = create(store, new_run()).await;
    let c = store
        .claim_run(&w, &decodable)
        .await
        .unwrap()
        .unwrap()
        .claim;
    store
        .append(&c, vec![record(0, step("a", b"1"))])
        .await
        .unwrap();
    f.execute(
        "UPDATE wf_journal SET item = 5 WHERE run_id = $1",
        &decodable,
    )
    .await;
    let bad = JournalRecord {
        seq: 0,
        event: step("a", b"1"),
    };
    let mut row = bad.event.encode();
    row.item = Some(5);
    assert!(JournalEvent::decode(row).is_err());
    assert!(matches!(
        store.journal(&decodable).await,
        Err(StoreError::Corrupt { seq: Some(0), .. })
    ));

    // A flipped bit in a run's input.
    let tampered = create(store, new_run()).await;
    f.flip_byte("wf_runs", "input", &tampered, None, 2).await;
    match store.load_run(&tampered).await {
        Err(StoreError::Corrupt {
            run_id: bad,
            seq: None,
            ..
        }) => assert_eq!(bad, tampered),
        other => panic!("expected a corrupt run row, got {other:?}"),
    }
    // A claim skips it for good (it is failed, still reported as corrupt) and takes the next.
    let fine = create(store, new_run()).await;
    let claimed: Vec<RunId> = store
        .claim(&w, &checkout(5))
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.claim.run_id)
        .collect();
    assert_eq!(claimed, [fine]);
    assert!(matches!(
        store.load_run(&tampered).await,
        Err(StoreError::Corrupt { seq: None, .. })
    ));

    // An unknown status: the run is reported, the listing goes on.
    let odd = create(store, new_run()).await;
    f.execute(
        "UPDATE wf_runs SET status = 'bogus' WHERE run_id = $1",
        &odd,
    )
    .await;
    assert!(matches!(
        store.load_run(&odd).await,
        Err(StoreError::Corrupt { seq: None, .. })
    ));
    assert!(matches!(
        store.request_cancel(&odd).await,
        Err(StoreError::Corrupt { seq: None, .. })
    ));
    assert!(matches!(
        store.send_signal(&odd, "approve", b"1".to_vec()).await,
        Err(StoreError::Corrupt { seq: None, .. })
    ));
    let page = store.list(&RunFilter::default()).await.unwrap();
    assert_eq!(page.unreadable.len(), 1);
    assert!(
        matches!(&page.unreadable[0], StoreError::Corrupt { run_id, seq: None, .. } if *run_id == odd)
    );
    assert!(page.runs.iter().any(|r| r.run_id == run_id));
}

async fn finish_records_the_result(f: &Fixture) {
    let store = &f.store;
    let w = long_lived(store).await;
    let ok = create(store, new_run()).await;
    let failed = create(store, new_run()).await;
    let claimed = store.claim(&w, &checkout(2)).await.unwrap();
    store
        .set_waiting(&claimed[0].claim, Some("approve".into()))
        .await
        .unwrap();
    store
        .finish(&claimed[0].claim, &completed(b"{\"shipped\":true}"))
        .await
        .unwrap();
    store
        .finish(
            &claimed[1].claim,
            &RunEnd {
                status: RunStatus::Failed,
                output: None,
                error: Some("step `charge` failed: card declined".into()),
            },
        )
        .await
        .unwrap();
    let done = store.load_run(&ok).await.unwrap().unwrap();
    assert_eq!(done.summary.status, RunStatus::Completed);
    assert_eq!(done.output.as_deref(), Some(&b"{\"shipped\":true}"[..]));
    assert_eq!(
        (
            done.summary.owner.clone(),
            done.summary.epoch,
            done.summary.waiting_for.clone()
        ),
        (None, 2, None)
    );
    let bad = store.load_run(&failed).await.unwrap().unwrap();
    assert_eq!(bad.summary.status, RunStatus::Failed);
    assert_eq!(
        bad.error.as_deref(),
        Some("step `charge` failed: card declined")
    );
    assert!(store.claim(&w, &checkout(5)).await.unwrap().is_empty());

    // A tampered result is reported.
    f.flip_byte("wf_runs", "output", &ok, None, 1).await;
    assert!(matches!(
        store.load_run(&ok).await,
        Err(StoreError::Corrupt { seq: None, .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Opening: bad input (no server needed), other schemas and concurrent migrations (PostgreSQL)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn malformed_urls_are_typed_errors() {
    for url in [
        "not a url",
        "mysql://user@localhost/db",
        "postgres://user@localhost:notaport/db",
        "",
    ] {
        match PostgresStore::connect(url).await {
            Err(StoreError::Database(message)) => {
                assert!(
                    message.contains("invalid PostgreSQL URL"),
                    "{url}: {message}"
                )
            }
            other => panic!("{url}: expected a Database error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_unreachable_server_is_a_typed_error() {
    // Port 1 on loopback: nothing listens there.
    let started = Instant::now();
    match PostgresStore::connect("postgres://postgres:secret@127.0.0.1:1/workflow").await {
        Err(StoreError::Database(message)) => {
            assert!(message.contains("cannot connect"), "{message}");
            assert!(message.contains("127.0.0.1:1"), "{message}");
            assert!(
                !message.contains("secret"),
                "the password leaked: {message}"
            );
        }
        other => panic!("expected a Database error, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[tokio::test]
async fn sqlite_refuses_a_newer_schema() {
    let fixture = Fixture::sqlite().await;
    let Backend::Sqlite { path, .. } = &fixture.backend else {
        unreachable!()
    };
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE wf_meta SET value = 99 WHERE key = 'schema_version'")
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(matches!(
        SqliteStore::open(path).await,
        Err(StoreError::NewerSchema {
            found: 99,
            supported: 4,
            ..
        })
    ));
}

/// A fresh schema on the test server, for the tests that set tables up themselves.
async fn bare_schema() -> Option<(PgConnection, String, String)> {
    let server_url = postgres_url()?;
    let mut conn = admin(&server_url).await;
    let schema = unique("wf_bare");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(&format!("SET search_path = {schema}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let url = with_schema(&server_url, &schema);
    Some((conn, schema, url))
}

async fn drop_schema(mut conn: PgConnection, schema: &str) {
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn postgres_migrates_a_version_2_schema() {
    let Some((mut conn, schema, url)) = bare_schema().await else {
        return;
    };
    // A store as version 2 left it: no definitions table, no journal length.
    drop(PostgresStore::connect(&url).await.unwrap());
    sqlx::raw_sql(
        "DROP TABLE wf_definitions; ALTER TABLE wf_runs DROP COLUMN journal_len;
         DROP INDEX wf_runs_created_at; DROP INDEX wf_runs_finished_at;
         ALTER TABLE wf_runs DROP COLUMN created_at; ALTER TABLE wf_runs DROP COLUMN finished_at;
         ALTER TABLE wf_journal DROP COLUMN at; DROP TABLE wf_audit;
             ALTER TABLE wf_runs DROP COLUMN trace_context;
         UPDATE wf_meta SET value = 2 WHERE key = 'schema_version';",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let store: DynStore = Arc::new(
        PostgresStore::connect(&url)
            .await
            .expect("a version 2 store opens"),
    );
    let version: i64 = sqlx::query_scalar("SELECT value FROM wf_meta WHERE key = 'schema_version'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(version, 4);
    let definition = StoredDefinition {
        workflow: "Pay".into(),
        version: 1,
        hash: 42,
        canonical: "workflow Pay version 1 input u32\n".into(),
        signal_schemas: Default::default(),
    };
    store.put_definition(&definition).await.unwrap();
    assert_eq!(store.definition("Pay", 42).await.unwrap(), Some(definition));
    let run_id = create(&store, new_run()).await;
    assert_eq!(
        store
            .load_run(&run_id)
            .await
            .unwrap()
            .unwrap()
            .summary
            .journal_len,
        0
    );
    drop(store);
    drop_schema(conn, &schema).await;
}

#[tokio::test]
async fn postgres_refuses_other_schemas() {
    // A newer store.
    let Some((mut conn, schema, url)) = bare_schema().await else {
        return;
    };
    sqlx::raw_sql(
        "CREATE TABLE wf_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);
         INSERT INTO wf_meta VALUES ('schema_version', 99);",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    match PostgresStore::connect(&url).await {
        Err(StoreError::NewerSchema {
            found: 99,
            supported: 4,
            location,
        }) => assert!(location.starts_with("postgres://"), "{location}"),
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    // An older one.
    sqlx::query("UPDATE wf_meta SET value = 1")
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(matches!(
        PostgresStore::connect(&url).await,
        Err(StoreError::NotAStore { .. })
    ));
    drop_schema(conn, &schema).await;

    // Tables named like the store's that are not a store.
    let Some((mut conn, schema, url)) = bare_schema().await else {
        return;
    };
    sqlx::query("CREATE TABLE wf_runs (id INT)")
        .execute(&mut conn)
        .await
        .unwrap();
    match PostgresStore::connect(&url).await {
        Err(StoreError::NotAStore { detail, .. }) => {
            assert!(detail.contains("wf_runs"), "{detail}")
        }
        other => panic!("expected NotAStore, got {other:?}"),
    }
    // Other tables of the application are fine: the store's go beside them.
    sqlx::query("DROP TABLE wf_runs; ")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE orders (id INT)")
        .execute(&mut conn)
        .await
        .unwrap();
    PostgresStore::connect(&url).await.unwrap();
    drop_schema(conn, &schema).await;

    // A search_path naming no schema.
    let server_url = postgres_url().unwrap();
    match PostgresStore::connect(&with_schema(&server_url, "wf_no_such_schema")).await {
        Err(StoreError::Database(message)) => assert!(message.contains("schema"), "{message}"),
        other => panic!("expected a Database error, got {other:?}"),
    }
    // A database that does not exist.
    let missing = format!(
        "{}/wf_no_such_database",
        server_url.rsplit_once('/').unwrap().0
    );
    assert!(matches!(
        PostgresStore::connect(&missing).await,
        Err(StoreError::Database(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_processes_may_create_one_store_at_once() {
    let Some((conn, schema, url)) = bare_schema().await else {
        return;
    };
    let connects = (0..8).map(|_| PostgresStore::connect(&url));
    let stores: Vec<PostgresStore> = futures::future::join_all(connects)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let run = new_run();
    stores[3].create_run(&run).await.unwrap();
    assert!(stores[5].load_run(&run.run_id).await.unwrap().is_some());
    drop(stores);
    drop_schema(conn, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_notifies_creates_signals_and_cancels_only() {
    let Some(fixture) = Fixture::postgres().await else {
        return;
    };
    let Backend::Postgres { url, .. } = &fixture.backend else {
        unreachable!()
    };
    let store = PostgresStore::connect(url).await.unwrap();
    let mut notifications = store.listen().await.unwrap();
    let store: DynStore = Arc::new(store);
    let w = long_lived(&store).await;
    let run_id = create(&store, new_run()).await;
    let mut ours = vec![run_id.clone()];
    assert_eq!(
        next_notification_of(&mut notifications, &ours).await,
        run_id
    );
    // Creating it again is no news.
    store.create_run(&new_run_with(&run_id)).await.unwrap();
    let claim = store.claim_run(&w, &run_id).await.unwrap().unwrap().claim;
    // Step commits, parks and finishes notify nothing.
    store
        .append(&claim, vec![record(0, step("a", b"1"))])
        .await
        .unwrap();
    store.set_waiting(&claim, None).await.unwrap();
    store.heartbeat(&w, Duration::from_secs(600)).await.unwrap();
    store
        .send_signal(&run_id, "approve", b"1".to_vec())
        .await
        .unwrap();
    assert_eq!(
        next_notification_of(&mut notifications, &ours).await,
        run_id,
        "the signal"
    );
    let other = create(&store, new_run()).await;
    ours.push(other.clone());
    assert_eq!(
        next_notification_of(&mut notifications, &ours).await,
        other,
        "nothing in between"
    );
    store.request_cancel(&run_id).await.unwrap();
    assert_eq!(
        next_notification_of(&mut notifications, &ours).await,
        run_id,
        "the cancel"
    );
    store.finish(&claim, &completed(b"1")).await.unwrap();
    let late = tokio::time::timeout(
        Duration::from_millis(300),
        next_notification_of(&mut notifications, &ours),
    )
    .await;
    assert!(late.is_err(), "a finish notified: {late:?}");
    fixture.cleanup().await;
}

async fn next_notification(notifications: &mut workflow_core::store::RunNotifications) -> RunId {
    tokio::time::timeout(Duration::from_secs(5), notifications.next())
        .await
        .expect("no notification within 5 s")
        .unwrap()
}

/// The next notification about one of `runs`: the other tests' runs (in schemas of their own
/// of the same database) notify on the same channel.
async fn next_notification_of(
    notifications: &mut workflow_core::store::RunNotifications,
    runs: &[RunId],
) -> RunId {
    loop {
        let run = next_notification(notifications).await;
        if runs.contains(&run) {
            return run;
        }
    }
}

/// Terminates every other connection to `database`; returns how many.
async fn kill_connections(admin: &mut PgConnection, database: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(database)
    .fetch_one(admin)
    .await
    .unwrap()
}

fn new_run_with(run_id: &RunId) -> NewRun {
    NewRun {
        run_id: run_id.clone(),
        ..new_run()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_store_survives_killed_connections() {
    let Some(server_url) = postgres_url() else {
        return;
    };
    // A database of its own: the test kills every connection to it.
    let database = unique("wf_kill");
    let mut admin_conn = admin(&server_url).await;
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(&mut admin_conn)
        .await
        .unwrap();
    let url = format!("{}/{database}", server_url.rsplit_once('/').unwrap().0);
    let store: DynStore = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let w = long_lived(&store).await;
    for round in 0..5u64 {
        let run_id = create(&store, new_run()).await;
        assert!(store.load_run(&run_id).await.unwrap().is_some());
        let killed = kill_connections(&mut admin_conn, &database).await;
        assert!(killed >= 1, "round {round}: nothing to kill");
        // Writes (through the writer's new connection) and reads (through the pool) go on.
        let claim = store.claim_run(&w, &run_id).await.unwrap().unwrap().claim;
        store
            .append(&claim, vec![record(0, step("a", b"1"))])
            .await
            .unwrap();
        kill_connections(&mut admin_conn, &database).await;
        assert_eq!(store.journal(&run_id).await.unwrap().len(), 1);
        store.finish(&claim, &completed(b"1")).await.unwrap();
        assert_eq!(status(&store, &run_id).await, RunStatus::Completed);
    }
    // Killed while writes are in flight: each write either commits or reports an error; the
    // store goes on.
    let runs: Vec<NewRun> = (0..200).map(|_| new_run()).collect();
    let creates = futures::future::join_all(runs.iter().map(|run| store.create_run(run)));
    let (results, _) = tokio::join!(creates, async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        kill_connections(&mut admin_conn, &database).await
    });
    for (run, result) in runs.iter().zip(results) {
        match result {
            Ok(_) => assert!(store.load_run(&run.run_id).await.unwrap().is_some()),
            Err(StoreError::Database(_)) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    create(&store, new_run()).await;
    drop(store);
    sqlx::query(&format!("DROP DATABASE {database} WITH (FORCE)"))
        .execute(&mut admin_conn)
        .await
        .unwrap();
}
