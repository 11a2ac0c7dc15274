//! Runs parked on a signal: what 100,000 of them cost the worker that started them (memory,
//! idle CPU), how fast a signal wakes one, and how fast a fresh process picks up signalled
//! runs; beside a hand-written tokio program holding the same number of waits in memory.
//! Prints a table; no timing assertions.
//!
//! ```sh
//! cargo bench -p workflow-core --bench waiting                     # 100,000 runs, SQLite
//! WAITING_RUNS=2000 cargo bench -p workflow-core --bench waiting   # a quick check
//! eval "$(bash scripts/postgres.sh start | tail -n 1)"             # WORKFLOW_TEST_POSTGRES_URL
//! cargo bench -p workflow-core --features postgres --bench waiting # SQLite, then PostgreSQL
//! ```
//!
//! The workflow has two steps: `prepare(x)`, then `decide(x, go: Signal<u32>)`. A run started
//! with [`DurableEngine::start_with_id`] (`start` under the id `gate-<x>`, so the bench keeps
//! no ids in memory) is executed by the engine's background worker: `prepare` runs, the wait
//! for `go` is journaled, and the run is *parked*: its claim is released, its status becomes
//! [`RunStatus::Waiting`] and the worker keeps nothing of it. A signal makes it claimable
//! again; the worker claims it, replays its journal, consumes the signal and runs `decide`.
//!
//! Every phase that measures memory runs in a process of its own (this binary again, with
//! `WAITING_CHILD` set), so no phase inherits another's heap; the parent only makes the stores,
//! sends the pickup signals and prints the rows its children report. Every runtime is
//! multi_thread with 2 workers.
//!
//! 0. **Baseline** (`WAITING_CHILD=baseline`): one tokio task per run, each awaiting a
//!    oneshot; RSS per waiting task, idle CPU, and the wake latency of `WAITING_WAKES` tasks
//!    woken one at a time (oneshot send to the task's first instruction after its await).
//!
//! Then, for each store (`WAITING_CHILD=engine` for phases 1-5):
//! 1. **Start.** Open the store, register the workflow, start `WAITING_RUNS` runs (default
//!    100,000), `WAITING_CONCURRENCY` (default 256) `start` calls in flight. No new start is
//!    issued after `WAITING_BUDGET_SECS` (default 120); the table says how many started.
//! 2. **Park.** Wait (up to `WAITING_SETTLE_SECS`, default 300) until the store lists every
//!    started run as Waiting: `engine.list(&RunFilter { status: Some(Waiting), .. })`, paged
//!    with `next`. If some never park, the table says so and gives the count of every status.
//!    RSS then, split into anonymous / file / shared memory, and again after glibc's
//!    `malloc_trim(0)` (memory in use, without what the allocator freed and kept).
//! 3. **Idle.** `WAITING_IDLE_SECS` (default 15) with nothing to do: CPU, store calls per
//!    second, RSS before and after.
//! 4. **Wake.** `WAITING_WAKES` (default 200) random parked runs, one at a time: from just
//!    before `handle.signal(..)` to the moment `decide`'s body starts (it records an `Instant`
//!    in a global map keyed by its input), and to the moment `engine.wait` returns the run's
//!    output. p50 / p99 / max (nearest rank).
//! 5. **Shutdown.** `engine.shutdown`, then check the worker left the store; the store's size.
//! 6. **Pickup** (`WAITING_CHILD=pickup`; off with `WAITING_PICKUP=0`): the parent signals
//!    `WAITING_WAKES` other parked runs from a client-only engine (no worker running
//!    anywhere), then a fresh process opens the store, registers the workflow and waits for
//!    those runs' results: time to the first and last `decide`, its RSS beside every remaining
//!    parked run, and its idle CPU.
//!
//! The store runs under a thin [`Store`] wrapper that counts calls by kind (claims, parks,
//! journal reads, ...) for the idle and per-wake figures.
//!
//! Stores: SQLite always, in a fresh file in `DURABLE_BENCH_DIR` (default: the system temp
//! dir). PostgreSQL when built with `--features postgres` and `WORKFLOW_TEST_POSTGRES_URL` is
//! set: a fresh database `waitbench_<pid>` on that server (the URL's user must be allowed to
//! create databases). Both are deleted at the end unless `WAITING_KEEP_DB` is set.
//!
//! Memory is VmRSS (and its peak, VmHWM) from `/proc/self/status`; CPU is user + system time
//! of the whole process from `/proc/self/stat` (100 ticks per second assumed), so 200 % is
//! both cores of a 2-core machine; a PostgreSQL server's own CPU and memory are not counted.
//! `WAITING_SEED` picks the runs woken (default 1).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::StreamExt;
use tokio::runtime::Runtime;
use workflow_core::prelude::*;
use workflow_core::store::{
    Claim, ClaimRequest, ClaimedRun, JournalRecord, NewRun, Park, Parked, QueueConfig, RunEnd,
    RunFilter, RunPage, RunRecord, SqliteStore, Store, StoreError, WorkerId, WorkerRegistration,
};
use workflow_core::WorkerOptions;

// ---------------------------------------------------------------------------------------------
// The workflow
// ---------------------------------------------------------------------------------------------

/// When `decide` started, by input: the end of a wake.
static DECIDE_STARTS: LazyLock<Mutex<HashMap<u32, Instant>>> = LazyLock::new(Default::default);
/// Bodies of `prepare` run (once per run, unless a run is re-executed).
static PREPARES: AtomicU64 = AtomicU64::new(0);

/// Two steps; the second waits for signal `go`.
#[derive(Clone, Copy)]
struct Gate;

#[workflow]
impl Gate {
    #[step]
    async fn prepare(&self, x: u32) -> u32 {
        PREPARES.fetch_add(1, Relaxed);
        x
    }
    #[step(after = prepare)]
    async fn decide(&self, x: u32, go: Signal<u32>) -> u32 {
        lock(&DECIDE_STARTS).entry(x).or_insert_with(Instant::now);
        x + go.received().unwrap_or(0)
    }
}

/// The id of the run of input `x`.
fn run_id(x: u32) -> RunId {
    RunId::from(format!("gate-{x}"))
}

fn decide_start(x: u32) -> Option<Instant> {
    lock(&DECIDE_STARTS).get(&x).copied()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------------------------
// A store wrapper that counts calls by kind
// ---------------------------------------------------------------------------------------------

/// The store calls, by kind.
#[derive(Clone, Copy)]
enum Call {
    CreateRun,
    Reopen,
    Purge,
    JournalTimes,
    Audit,
    LoadRun,
    List,
    Journal,
    SendSignal,
    HasSignal,
    RequestCancel,
    SetQueue,
    RegisterWorker,
    Heartbeat,
    DeregisterWorker,
    ListWorkers,
    ReapExpired,
    Claim,
    ClaimRun,
    Append,
    ConsumeSignal,
    SetWaiting,
    Park,
    Release,
    Finish,
}

const CALL_NAMES: [&str; 25] = [
    "create_run",
    "reopen",
    "purge",
    "journal_times",
    "audit",
    "load_run",
    "list",
    "journal",
    "send_signal",
    "has_signal",
    "request_cancel",
    "set_queue",
    "register_worker",
    "heartbeat",
    "deregister_worker",
    "list_workers",
    "reap_expired",
    "claim",
    "claim_run",
    "append",
    "consume_signal",
    "set_waiting",
    "park",
    "release",
    "finish",
];

#[derive(Default)]
struct Counts {
    calls: [AtomicU64; CALL_NAMES.len()],
    /// Runs returned by `claim` and `claim_run`.
    claimed: AtomicU64,
    /// `park` calls answered `Parked`.
    parked: AtomicU64,
    /// `park` calls answered `Woken` (a signal arrived as the run was parking).
    woken_at_park: AtomicU64,
}

/// A snapshot of [`Counts::calls`].
type Calls = [u64; CALL_NAMES.len()];

impl Counts {
    fn calls(&self) -> Calls {
        std::array::from_fn(|i| self.calls[i].load(Relaxed))
    }
}

/// Calls between two snapshots divided by `per` (seconds, or runs), nonzero kinds only.
fn call_rates(before: &Calls, after: &Calls, per: f64) -> String {
    let rates: Vec<String> = CALL_NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| after[*i] > before[*i])
        .map(|(i, name)| format!("{name} {:.2}", (after[i] - before[i]) as f64 / per))
        .collect();
    if rates.is_empty() {
        "none".to_owned()
    } else {
        rates.join(", ")
    }
}

struct Counted {
    inner: Arc<dyn Store>,
    counts: Arc<Counts>,
}

impl Counted {
    fn count(&self, call: Call) -> &dyn Store {
        self.counts.calls[call as usize].fetch_add(1, Relaxed);
        self.inner.as_ref()
    }
}

impl Store for Counted {
    fn create_run<'a>(&'a self, run: &'a NewRun) -> BoxFuture<'a, Result<RunRecord, StoreError>> {
        self.count(Call::CreateRun).create_run(run)
    }
    fn record_audit<'a>(
        &'a self,
        record: &'a workflow_core::store::AuditRecord,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.count(Call::Audit).record_audit(record)
    }
    fn list_audit(
        &self,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<workflow_core::store::AuditRecord>, StoreError>> {
        self.count(Call::Audit).list_audit(limit)
    }
    fn purge<'a>(
        &'a self,
        finished_before: std::time::SystemTime,
        limit: u32,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        self.count(Call::Purge).purge(finished_before, limit)
    }
    fn journal_times<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<workflow_core::store::CommitTimes, StoreError>> {
        self.count(Call::JournalTimes).journal_times(run_id)
    }
    fn reopen<'a>(
        &'a self,
        run_id: &'a RunId,
        rewound: &'a workflow_core::JournalEvent,
    ) -> BoxFuture<'a, Result<RunStatus, StoreError>> {
        self.count(Call::Reopen).reopen(run_id, rewound)
    }
    fn load_run<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>> {
        self.count(Call::LoadRun).load_run(run_id)
    }
    fn list<'a>(&'a self, filter: &'a RunFilter) -> BoxFuture<'a, Result<RunPage, StoreError>> {
        self.count(Call::List).list(filter)
    }
    fn journal<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Vec<JournalRecord>, StoreError>> {
        self.count(Call::Journal).journal(run_id)
    }
    fn send_signal<'a>(
        &'a self,
        run_id: &'a RunId,
        name: &'a str,
        payload: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.count(Call::SendSignal)
            .send_signal(run_id, name, payload)
    }
    fn has_signal<'a>(
        &'a self,
        run_id: &'a RunId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.count(Call::HasSignal).has_signal(run_id, name)
    }
    fn request_cancel<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<RunStatus, StoreError>> {
        self.count(Call::RequestCancel).request_cancel(run_id)
    }
    fn set_queue<'a>(&'a self, config: &'a QueueConfig) -> BoxFuture<'a, Result<(), StoreError>> {
        self.count(Call::SetQueue).set_queue(config)
    }
    fn register_worker<'a>(
        &'a self,
        registration: &'a WorkerRegistration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.count(Call::RegisterWorker)
            .register_worker(registration)
    }
    fn heartbeat<'a>(
        &'a self,
        worker: &'a WorkerId,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<RunId>, StoreError>> {
        self.count(Call::Heartbeat).heartbeat(worker, lease)
    }
    fn deregister_worker<'a>(
        &'a self,
        worker: &'a WorkerId,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.count(Call::DeregisterWorker).deregister_worker(worker)
    }
    fn list_workers(&self) -> BoxFuture<'_, Result<Vec<WorkerId>, StoreError>> {
        self.count(Call::ListWorkers).list_workers()
    }
    fn reap_expired(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.count(Call::ReapExpired).reap_expired()
    }
    fn wake_hints(&self) -> BoxFuture<'_, Option<futures::stream::BoxStream<'static, ()>>> {
        self.inner.wake_hints() // not counted: one subscription per worker
    }
    fn claim<'a>(
        &'a self,
        worker: &'a WorkerId,
        request: &'a ClaimRequest,
    ) -> BoxFuture<'a, Result<Vec<ClaimedRun>, StoreError>> {
        let inner = self.count(Call::Claim);
        Box::pin(async move {
            let claimed = inner.claim(worker, request).await?;
            self.counts.claimed.fetch_add(claimed.len() as u64, Relaxed);
            Ok(claimed)
        })
    }
    fn claim_run<'a>(
        &'a self,
        worker: &'a WorkerId,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Option<ClaimedRun>, StoreError>> {
        let inner = self.count(Call::ClaimRun);
        Box::pin(async move {
            let claimed = inner.claim_run(worker, run_id).await?;
            if claimed.is_some() {
                self.counts.claimed.fetch_add(1, Relaxed);
            }
            Ok(claimed)
        })
    }
    fn append(
        &self,
        claim: &Claim,
        records: Vec<JournalRecord>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        self.count(Call::Append).append(claim, records)
    }
    fn consume_signal<'a>(
        &'a self,
        claim: &'a Claim,
        seq: u64,
        step: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        self.count(Call::ConsumeSignal)
            .consume_signal(claim, seq, step, name)
    }
    fn set_waiting<'a>(
        &'a self,
        claim: &'a Claim,
        waiting_for: Option<String>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.count(Call::SetWaiting).set_waiting(claim, waiting_for)
    }
    fn park<'a>(
        &'a self,
        claim: &'a Claim,
        park: &'a Park,
    ) -> BoxFuture<'a, Result<Parked, StoreError>> {
        let inner = self.count(Call::Park);
        Box::pin(async move {
            let parked = inner.park(claim, park).await?;
            match parked {
                Parked::Parked => &self.counts.parked,
                Parked::Woken { .. } => &self.counts.woken_at_park,
            }
            .fetch_add(1, Relaxed);
            Ok(parked)
        })
    }
    fn release<'a>(&'a self, claim: &'a Claim) -> BoxFuture<'a, Result<(), StoreError>> {
        self.count(Call::Release).release(claim)
    }
    fn finish<'a>(
        &'a self,
        claim: &'a Claim,
        end: &'a RunEnd,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.count(Call::Finish).finish(claim, end)
    }
}

// ---------------------------------------------------------------------------------------------
// Stores
// ---------------------------------------------------------------------------------------------

/// A store under test, in a place of its own made for this run.
enum Backend {
    /// A fresh file.
    Sqlite(PathBuf),
    /// A fresh database on the server of `WORKFLOW_TEST_POSTGRES_URL`.
    #[cfg(feature = "postgres")]
    Postgres(pg::Database),
}

impl Backend {
    /// A fresh SQLite file.
    fn sqlite() -> Self {
        let dir = std::env::var_os("DURABLE_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
        let path = dir.join(format!("workflow-bench-waiting-{}.db", std::process::id()));
        remove_sqlite(&path);
        Backend::Sqlite(path)
    }

    fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "SQLite",
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => "PostgreSQL",
        }
    }

    /// What a child process needs to open the same store.
    fn location(&self) -> String {
        match self {
            Backend::Sqlite(path) => path.display().to_string(),
            #[cfg(feature = "postgres")]
            Backend::Postgres(db) => db.url.clone(),
        }
    }

    fn from_location(name: &str, location: &str) -> Self {
        match name {
            "SQLite" => Backend::Sqlite(location.into()),
            #[cfg(feature = "postgres")]
            "PostgreSQL" => Backend::Postgres(pg::Database::existing(location)),
            other => panic!("unknown store `{other}`"),
        }
    }

    async fn open(&self) -> Arc<dyn Store> {
        match self {
            Backend::Sqlite(path) => Arc::new(SqliteStore::open(path).await.expect("open SQLite")),
            #[cfg(feature = "postgres")]
            Backend::Postgres(db) => Arc::new(
                workflow_core::store::PostgresStore::connect(&db.url)
                    .await
                    .expect("open PostgreSQL"),
            ),
        }
    }

    /// Size on disk.
    async fn size(&self) -> String {
        match self {
            Backend::Sqlite(path) => {
                let mib = |suffix: &str| {
                    std::fs::metadata(format!("{}{suffix}", path.display()))
                        .map_or(0.0, |m| m.len() as f64 / (1024.0 * 1024.0))
                };
                format!("{:.1} MiB (+ WAL {:.1} MiB)", mib(""), mib("-wal"))
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(db) => db.size().await,
        }
    }

    /// Deletes the store, unless `WAITING_KEEP_DB` is set.
    async fn cleanup(&self) {
        let keep = std::env::var_os("WAITING_KEEP_DB").is_some();
        if keep {
            eprintln!("kept {}", self.location());
            return;
        }
        match self {
            Backend::Sqlite(path) => remove_sqlite(path),
            #[cfg(feature = "postgres")]
            Backend::Postgres(db) => db.drop_database().await,
        }
    }
}

/// PostgreSQL: a fresh database per run on the server of `WORKFLOW_TEST_POSTGRES_URL`.
#[cfg(feature = "postgres")]
mod pg {
    use sqlx::Connection;

    /// One database on the server.
    pub struct Database {
        /// Its URL.
        pub url: String,
        /// The server's URL (for `CREATE` and `DROP DATABASE`) and the database's name.
        admin: Option<(String, String)>,
    }

    impl Database {
        /// Creates `waitbench_<pid>` on the server of `server`.
        pub async fn fresh(server: &str) -> Database {
            let name = format!("waitbench_{}", std::process::id());
            let mut admin = sqlx::PgConnection::connect(server)
                .await
                .unwrap_or_else(|e| panic!("cannot reach the PostgreSQL server {server}: {e}"));
            for sql in [
                format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                format!("CREATE DATABASE \"{name}\""),
            ] {
                sqlx::query(&sql)
                    .execute(&mut admin)
                    .await
                    .expect("create the database");
            }
            Database {
                url: url_of(server, &name),
                admin: Some((server.to_owned(), name)),
            }
        }

        /// A database made by another process (a child's view: it never drops it).
        pub fn existing(url: &str) -> Database {
            Database {
                url: url.to_owned(),
                admin: None,
            }
        }

        /// `pg_database_size`: tables, indexes and their free space (the server's WAL is
        /// shared by every database and not counted).
        pub async fn size(&self) -> String {
            let mut conn = sqlx::PgConnection::connect(&self.url)
                .await
                .expect("connect to the database");
            let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(&mut conn)
                .await
                .expect("database size");
            format!(
                "{:.1} MiB (pg_database_size)",
                bytes as f64 / (1024.0 * 1024.0)
            )
        }

        pub async fn drop_database(&self) {
            let Some((server, name)) = &self.admin else {
                return;
            };
            if let Ok(mut admin) = sqlx::PgConnection::connect(server).await {
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let _ = sqlx::query(&sql).execute(&mut admin).await;
            }
        }
    }

    /// The URL of database `name` on the server of `server` (its query string kept).
    fn url_of(server: &str, name: &str) -> String {
        let (base, query) = match server.split_once('?') {
            Some((base, query)) => (base, format!("?{query}")),
            None => (server, String::new()),
        };
        let after_scheme = base.find("://").map_or(0, |i| i + 3);
        let host = match base[after_scheme..].find('/') {
            Some(slash) => &base[..after_scheme + slash],
            None => base,
        };
        format!("{host}/{name}{query}")
    }
}

fn remove_sqlite(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// An engine (with its worker) over the counted store.
fn counted_engine(store: Arc<dyn Store>) -> (DurableEngine, Arc<Counts>) {
    let counts = Arc::new(Counts::default());
    let store = Counted {
        inner: store,
        counts: counts.clone(),
    };
    (DurableEngine::new(store), counts)
}

/// Runs with `status`, counted page by page (`next`), keeping no page.
async fn count_status(engine: &DurableEngine, status: RunStatus) -> u64 {
    let mut filter = RunFilter {
        status: Some(status),
        limit: 5000,
        ..RunFilter::default()
    };
    let mut count = 0;
    loop {
        let page = engine.list(&filter).await.expect("list");
        count += page.runs.len() as u64;
        match page.next {
            Some(next) => filter.after = Some(next),
            None => return count,
        }
    }
}

/// `status count` for every status that has runs.
async fn status_counts(engine: &DurableEngine) -> String {
    let mut parts = Vec::new();
    for status in RunStatus::ALL {
        let count = count_status(engine, status).await;
        if count > 0 {
            parts.push(format!("{status} {count}"));
        }
    }
    parts.join(", ")
}

// ---------------------------------------------------------------------------------------------
// Process figures, statistics, formatting
// ---------------------------------------------------------------------------------------------

/// Fields of `/proc/self/status` (in KiB there), in MiB, read at once.
fn status_mib<const N: usize>(names: [&str; N]) -> [f64; N] {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    names.map(|name| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    })
}

/// VmRSS and VmHWM in MiB.
fn memory() -> (f64, f64) {
    let [rss, hwm] = status_mib(["VmRSS:", "VmHWM:"]);
    (rss, hwm)
}

/// VmRSS and VmHWM in MiB, and VmRSS split into anonymous memory, mapped files and shared
/// memory (the SQLite WAL index), read at once.
fn memory_split() -> (f64, f64, String) {
    let [rss, hwm, anon, file, shmem] =
        status_mib(["VmRSS:", "VmHWM:", "RssAnon:", "RssFile:", "RssShmem:"]);
    let split = format!("anon {anon:.1}, file {file:.1}, shmem {shmem:.1}");
    (rss, hwm, split)
}

/// Gives the allocator's free memory back to the system (glibc `malloc_trim`), so that the
/// RSS after it counts memory in use, not memory freed and kept for reuse.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() -> bool {
    extern "C" {
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: malloc_trim takes no pointer and may be called at any time.
    unsafe { malloc_trim(0) };
    true
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() -> bool {
    false
}

/// User + system CPU time of the process.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name (in parentheses), utime and stime are the 12th and 13th fields.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// Wall and CPU time since a mark.
struct Mark {
    wall: Instant,
    cpu: Duration,
}

impl Mark {
    fn now() -> Self {
        Mark {
            wall: Instant::now(),
            cpu: cpu(),
        }
    }
    fn secs(&self) -> f64 {
        self.wall.elapsed().as_secs_f64()
    }
    /// CPU time since the mark as a percentage of one core.
    fn cpu_percent(&self) -> f64 {
        (cpu() - self.cpu).as_secs_f64() / self.secs() * 100.0
    }
}

/// p50, p99 and max of some durations (nearest rank).
struct Spread {
    p50: Duration,
    p99: Duration,
    max: Duration,
    count: usize,
}

impl Spread {
    fn of(samples: &[Duration]) -> Option<Spread> {
        let mut sorted = samples.to_vec();
        sorted.sort();
        let rank = |p: f64| sorted[((p * sorted.len() as f64).ceil() as usize).max(1) - 1];
        (!sorted.is_empty()).then(|| Spread {
            p50: rank(0.50),
            p99: rank(0.99),
            max: *sorted.last().expect("not empty"),
            count: sorted.len(),
        })
    }

    fn show(spread: &Option<Spread>) -> String {
        match spread {
            Some(s) => format!(
                "{} / {} / {} (n={})",
                dur(s.p50),
                dur(s.p99),
                dur(s.max),
                s.count
            ),
            None => "no samples".to_owned(),
        }
    }
}

/// A duration with a unit that suits it.
fn dur(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 1.0 {
        format!("{secs:.2} s")
    } else if secs >= 1e-3 {
        format!("{:.2} ms", secs * 1e3)
    } else {
        format!("{:.1} µs", secs * 1e6)
    }
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// `count` distinct numbers below `below`, reproducible from `seed` (splitmix64).
fn pick(count: usize, below: u64, seed: u64) -> Vec<u32> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut seen = HashSet::new();
    let mut picked = Vec::new();
    while picked.len() < count.min(below as usize) {
        let x = (next() % below) as u32;
        if seen.insert(x) {
            picked.push(x);
        }
    }
    picked
}

/// The runs woken one at a time in phase 4, and those signalled for the pickup phase: distinct
/// random inputs below `started`.
fn picked(cfg: &Config, started: u64) -> (Vec<u32>, Vec<u32>) {
    let mut woken = pick(cfg.wakes * 2, started, cfg.seed);
    let pickup = woken.split_off(woken.len().min(cfg.wakes));
    (woken, pickup)
}

/// The printed table, and the numbers the ratios are computed from.
#[derive(Default)]
struct Table {
    rows: Vec<(String, String)>,
    numbers: HashMap<String, f64>,
}

impl Table {
    fn section(&mut self, title: &str) {
        self.rows.push((format!("**{title}**"), String::new()));
    }
    fn row(&mut self, what: &str, value: impl Into<String>) {
        self.rows.push((what.to_owned(), value.into()));
    }
    fn number(&mut self, key: &str, value: f64) {
        self.numbers.insert(key.to_owned(), value);
    }
    /// A child's table, for its parent (see [`ChildOut`]).
    fn emit(&self) {
        for (what, value) in &self.rows {
            ChildOut::row(what, value.clone());
        }
        for (key, value) in &self.numbers {
            ChildOut::number(key, *value);
        }
    }
    fn print(&self) {
        println!();
        println!("| {:<64} | {:<60} |", "measure", "value");
        println!("|{:-<66}|{:-<62}|", "", "");
        for (what, value) in &self.rows {
            println!("| {what:<64} | {value:<60} |");
        }
    }
}

/// Child processes write their rows to stdout as `ROW\t<measure>\t<value>` and their numbers
/// as `NUM\t<key>\t<value>`; the parent reads them into its table.
struct ChildOut;

impl ChildOut {
    fn row(what: &str, value: impl Into<String>) {
        println!("ROW\t{what}\t{}", value.into());
    }
    fn number(key: &str, value: f64) {
        println!("NUM\t{key}\t{value}");
    }
}

/// Runs this binary again as child `kind`, with `vars`, and copies its rows into `table`.
fn run_child(kind: &str, vars: &[(&str, String)], table: &mut Table) {
    let mut command = Command::new(std::env::current_exe().expect("current exe"));
    command
        .env(CHILD, kind)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (name, value) in vars {
        command.env(name, value);
    }
    let output = command.output().expect("run the child process");
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let mut fields = line.splitn(3, '\t');
        match (fields.next(), fields.next(), fields.next()) {
            (Some("ROW"), Some(what), Some(value)) => table.row(what, value),
            (Some("NUM"), Some(key), Some(value)) => {
                table.number(key, value.parse().unwrap_or(f64::NAN));
            }
            _ => {}
        }
    }
    if !output.status.success() {
        table.row(
            &format!("{kind} process"),
            format!("FAILED ({})", output.status),
        );
    }
}

/// Env of a child process: which phase it runs, and where its store is.
const CHILD: &str = "WAITING_CHILD";
const CHILD_STORE: &str = "WAITING_CHILD_STORE";
const CHILD_LOCATION: &str = "WAITING_CHILD_LOCATION";
/// Inputs of the runs a pickup child waits for, comma-separated.
const CHILD_INPUTS: &str = "WAITING_CHILD_INPUTS";
/// Runs parked in the store when the pickup child starts.
const CHILD_PARKED: &str = "WAITING_CHILD_PARKED";

/// How long one woken run may take before it counts as not woken.
const WAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// The bench's settings, from the environment.
struct Config {
    runs: u64,
    concurrency: usize,
    budget: Duration,
    settle: Duration,
    idle: Duration,
    wakes: usize,
    pickup: bool,
    seed: u64,
}

impl Config {
    fn from_env() -> Self {
        Config {
            runs: env("WAITING_RUNS", 100_000),
            concurrency: env("WAITING_CONCURRENCY", 256),
            budget: Duration::from_secs(env("WAITING_BUDGET_SECS", 120)),
            settle: Duration::from_secs(env("WAITING_SETTLE_SECS", 300)),
            idle: Duration::from_secs(env("WAITING_IDLE_SECS", 15)),
            wakes: env("WAITING_WAKES", 200),
            pickup: env("WAITING_PICKUP", 1) != 0,
            seed: env("WAITING_SEED", 1),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Phase 0: the tokio baseline (child process)
// ---------------------------------------------------------------------------------------------

/// One tokio task per run, each awaiting a oneshot that carries the channel to answer on.
fn baseline_child(cfg: &Config) {
    let (rss0, _) = memory();
    let rt = runtime();
    rt.block_on(async {
        let (rss_rt, _) = memory();
        let waiting = Arc::new(AtomicU64::new(0));
        let t0 = Instant::now();
        let mut wakers: Vec<
            Option<tokio::sync::oneshot::Sender<tokio::sync::oneshot::Sender<Instant>>>,
        > = Vec::with_capacity(cfg.runs as usize);
        for _ in 0..cfg.runs {
            let (wake, woken) =
                tokio::sync::oneshot::channel::<tokio::sync::oneshot::Sender<Instant>>();
            let waiting = waiting.clone();
            tokio::spawn(async move {
                waiting.fetch_add(1, Relaxed);
                if let Ok(answer) = woken.await {
                    let _ = answer.send(Instant::now());
                }
            });
            wakers.push(Some(wake));
        }
        while waiting.load(Relaxed) < cfg.runs {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let spawn_secs = t0.elapsed().as_secs_f64();
        let (rss, hwm, split) = memory_split();
        let per_task = (rss - rss_rt) * 1024.0 / cfg.runs as f64;
        let trimmed = trim().then(memory_split);
        let idle = Mark::now();
        tokio::time::sleep(cfg.idle).await;
        let idle_cpu = idle.cpu_percent();

        let mut woke = Vec::new();
        let mut answered = Vec::new();
        for x in pick(cfg.wakes, cfg.runs, cfg.seed) {
            let wake = wakers[x as usize].take().expect("each task is woken once");
            let (answer, answer_rx) = tokio::sync::oneshot::channel();
            let t = Instant::now();
            wake.send(answer).expect("the task waits");
            let at = answer_rx.await.expect("the task answers");
            answered.push(t.elapsed());
            woke.push(at.saturating_duration_since(t));
        }
        let (woke, answered) = (Spread::of(&woke), Spread::of(&answered));

        ChildOut::row("RSS before the runtime (MiB)", format!("{rss0:.1}"));
        ChildOut::row(
            &format!("{} tasks spawned and waiting (s)", cfg.runs),
            format!("{spawn_secs:.2}"),
        );
        ChildOut::row(
            "all waiting: RSS / peak (MiB)",
            format!("{rss:.1} / {hwm:.1} ({split})"),
        );
        if let Some((trimmed, _, split)) = trimmed {
            ChildOut::row(
                "all waiting, after malloc_trim(0): RSS (MiB)",
                format!(
                    "{trimmed:.1} ({split}); {:.3} KiB per task",
                    (trimmed - rss_rt) * 1024.0 / cfg.runs as f64
                ),
            );
        }
        ChildOut::row(
            "RSS per waiting task (KiB), task + oneshot + its Sender",
            format!("{per_task:.3}"),
        );
        ChildOut::row(
            &format!("idle {} s: CPU", cfg.idle.as_secs()),
            format!("{idle_cpu:.1} %"),
        );
        ChildOut::row(
            "wake: send to task running, p50 / p99 / max",
            Spread::show(&woke),
        );
        ChildOut::row(
            "wake: send to answer received, p50 / p99 / max",
            Spread::show(&answered),
        );
        ChildOut::number("baseline.kib_per_wait", per_task);
        ChildOut::number("baseline.idle_cpu", idle_cpu);
        if let Some(s) = woke {
            ChildOut::number("baseline.wake_p50", s.p50.as_secs_f64());
            ChildOut::number("baseline.wake_p99", s.p99.as_secs_f64());
            ChildOut::number("baseline.wake_max", s.max.as_secs_f64());
        }
        if let Some(s) = answered {
            ChildOut::number("baseline.done_p50", s.p50.as_secs_f64());
        }
        drop(wakers);
    });
}

// ---------------------------------------------------------------------------------------------
// Phases 1-5: the engine on one store
// ---------------------------------------------------------------------------------------------

/// Prints progress to stderr every 5 s.
fn monitor(
    name: &'static str,
    counts: Arc<Counts>,
    started: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let t0 = Instant::now();
        let mut mark = Mark::now();
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            eprintln!(
                "  [{name} {:>4.0} s] started {:>7}, parked {:>7}, claimed {:>7}, CPU {:>3.0} %, RSS {:>6.1} MiB",
                t0.elapsed().as_secs_f64(),
                started.load(Relaxed),
                counts.parked.load(Relaxed),
                counts.claimed.load(Relaxed),
                mark.cpu_percent(),
                memory().0,
            );
            mark = Mark::now();
        }
    })
}

/// Phase 1: starts up to `cfg.runs` runs within the budget, counting them in `started`.
async fn start_runs(engine: &DurableEngine, cfg: &Config, started: &AtomicU64, table: &mut Table) {
    let mark = Mark::now();
    let deadline = Instant::now() + cfg.budget;
    let tenth = (cfg.runs / 10).max(1);
    let (mut first_tenth, mut ninth_tenth) = (None, None);
    let mut starts = futures::stream::iter(0..cfg.runs)
        .take_while(|_| std::future::ready(Instant::now() < deadline))
        .map(|x| {
            let engine = engine.clone();
            async move {
                engine
                    .start_with_id(&Gate, run_id(x as u32), x as u32)
                    .await
                    .expect("start")
            }
        })
        .buffer_unordered(cfg.concurrency);
    while starts.next().await.is_some() {
        let n = started.fetch_add(1, Relaxed) + 1;
        if n == tenth {
            first_tenth = Some(mark.wall.elapsed());
        }
        if n == cfg.runs - tenth {
            ninth_tenth = Some(mark.wall.elapsed());
        }
    }
    let secs = mark.secs();
    let n = started.load(Relaxed);
    table.row(
        "runs started (start calls returned)",
        format!(
            "{n} of {}{}",
            cfg.runs,
            if n < cfg.runs { " (budget hit)" } else { "" }
        ),
    );
    table.row(
        "start: wall time / CPU",
        format!(
            "{secs:.1} s ({:.0} runs/s) / {:.0} %",
            n as f64 / secs,
            mark.cpu_percent()
        ),
    );
    // With fewer runs in a tenth than calls in flight, the last tenth all return at once.
    let meaningful = tenth >= 4 * cfg.concurrency as u64;
    if let (true, Some(first), Some(last)) = (meaningful, first_tenth, ninth_tenth) {
        table.row(
            "start rate: first 10 % / last 10 % of the runs (runs/s)",
            format!(
                "{:.0} / {:.0}",
                tenth as f64 / first.as_secs_f64(),
                tenth as f64 / (secs - last.as_secs_f64())
            ),
        );
    }
}

/// Phase 2: waits until the store lists `started` runs as Waiting; returns how many it lists.
async fn await_parked(
    engine: &DurableEngine,
    started: u64,
    settle: Duration,
    table: &mut Table,
) -> u64 {
    let t0 = Instant::now();
    let mut waiting;
    loop {
        waiting = count_status(engine, RunStatus::Waiting).await;
        if waiting >= started || t0.elapsed() > settle {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let secs = t0.elapsed().as_secs_f64();
    if waiting >= started {
        table.row(
            "last start returned to all listed Waiting (s)",
            format!("{secs:.1}"),
        );
    } else {
        table.row(
            "NOT ALL PARKED: Waiting after the settle time",
            format!("{waiting} of {started} after {secs:.0} s"),
        );
    }
    table.row("runs by status", status_counts(engine).await);
    waiting
}

/// What phase 4 measured.
#[derive(Default)]
struct Wakes {
    /// Signal sent to `decide` started.
    to_decide: Vec<Duration>,
    /// Signal sent to `engine.wait` returning the output.
    to_result: Vec<Duration>,
    /// The `signal` call itself.
    signal_call: Vec<Duration>,
    /// Runs that were not Waiting when picked.
    not_waiting: u64,
    /// Runs whose result did not come within [`WAKE_TIMEOUT`].
    timed_out: Vec<u32>,
    /// Runs whose output was not `x + 1`.
    wrong: Vec<u32>,
    /// Runs that finished but whose `decide` start was never recorded.
    no_decide: Vec<u32>,
    /// Runs whose `engine.wait` returned 100 ms or more after `decide` started.
    slow_wait: u64,
}

/// Phase 4: wakes the runs of `inputs` one at a time.
async fn wake_one_by_one(engine: &DurableEngine, inputs: &[u32]) -> Wakes {
    let mut wakes = Wakes::default();
    for &x in inputs {
        let id = run_id(x);
        let status = engine.status(&id).await.expect("status").summary.status;
        if status != RunStatus::Waiting {
            wakes.not_waiting += 1;
            continue;
        }
        let t0 = Instant::now();
        engine
            .handle::<Gate>(id.clone())
            .signal(Gate::signals().go, 1)
            .await
            .expect("signal");
        wakes.signal_call.push(t0.elapsed());
        let result = tokio::time::timeout(WAKE_TIMEOUT, engine.wait::<Gate>(&id)).await;
        let done = t0.elapsed();
        match result {
            Err(_) => wakes.timed_out.push(x),
            Ok(Ok(output)) if output == x + 1 => wakes.to_result.push(done),
            Ok(_) => wakes.wrong.push(x),
        }
        match decide_start(x) {
            Some(at) => {
                let to_decide = at.saturating_duration_since(t0);
                wakes.to_decide.push(to_decide);
                if done.saturating_sub(to_decide) >= Duration::from_millis(100) {
                    wakes.slow_wait += 1;
                }
            }
            None => wakes.no_decide.push(x),
        }
    }
    wakes
}

fn report_wakes(table: &mut Table, wakes: &Wakes, prefix: &str) {
    let (to_decide, to_result) = (Spread::of(&wakes.to_decide), Spread::of(&wakes.to_result));
    table.row(
        "wake: signal sent to `decide` started, p50 / p99 / max",
        Spread::show(&to_decide),
    );
    table.row(
        "wake: signal sent to `engine.wait` returned, p50 / p99 / max",
        Spread::show(&to_result),
    );
    table.row(
        "wake: the `engine.signal` call alone, p50 / p99 / max",
        Spread::show(&Spread::of(&wakes.signal_call)),
    );
    table.row(
        "wake: `engine.wait` returned >= 100 ms after `decide` started",
        format!("{} of {}", wakes.slow_wait, wakes.to_decide.len()),
    );
    let failures = [
        ("not Waiting when picked", wakes.not_waiting as usize),
        ("no result within 30 s", wakes.timed_out.len()),
        ("wrong output", wakes.wrong.len()),
        ("finished without `decide` starting", wakes.no_decide.len()),
    ];
    if failures.iter().any(|(_, n)| *n > 0) {
        let text: Vec<String> = failures
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(what, n)| format!("{n} {what}"))
            .collect();
        let first: Vec<u32> = (wakes.timed_out.iter())
            .chain(&wakes.wrong)
            .chain(&wakes.no_decide)
            .take(5)
            .copied()
            .collect();
        table.row(
            "WAKE FAILURES",
            format!("{} (inputs {first:?})", text.join(", ")),
        );
    }
    if let Some(s) = to_decide {
        table.number(&format!("{prefix}.wake_p50"), s.p50.as_secs_f64());
        table.number(&format!("{prefix}.wake_p99"), s.p99.as_secs_f64());
        table.number(&format!("{prefix}.wake_max"), s.max.as_secs_f64());
    }
    if let Some(s) = to_result {
        table.number(&format!("{prefix}.done_p50"), s.p50.as_secs_f64());
    }
}

/// The engine child: phases 1-5 on the store the parent made; its rows go to the parent.
fn engine_child(cfg: &Config) {
    let (rss0, _) = memory();
    let backend = Backend::from_location(
        &std::env::var(CHILD_STORE).expect("store"),
        &std::env::var(CHILD_LOCATION).expect("location"),
    );
    let mut table = Table::default();
    engine_phases(&backend, cfg, rss0, &mut table);
    table.emit();
}

/// Phases 1-5 on one store. `rss0` is the process's RSS before any runtime existed. Leaves
/// the numbers `<store>.started` and `<store>.parked` in the table.
fn engine_phases(backend: &Backend, cfg: &Config, rss0: f64, table: &mut Table) {
    let name = backend.name();
    let key = name.to_lowercase();
    table.row("RSS before the runtime (MiB)", format!("{rss0:.1}"));
    let started = Arc::new(AtomicU64::new(0));
    let rt = runtime();
    rt.block_on(async {
        let (engine, counts) = counted_engine(backend.open().await);
        engine.register(&Gate).await.expect("register");
        let (rss_open, _) = memory();
        table.row(
            "store open, workflow registered: RSS (MiB)",
            format!("{rss_open:.1}"),
        );
        let progress = monitor(name, counts.clone(), started.clone());

        // Phase 1: start; phase 2: until all are parked.
        start_runs(&engine, cfg, &started, table).await;
        let started = started.load(Relaxed);
        let parked = await_parked(&engine, started, cfg.settle, table).await;
        progress.abort();
        let (rss, hwm, split) = memory_split();
        table.row(
            "all parked: RSS / peak (MiB)",
            format!("{rss:.1} / {hwm:.1} ({split})"),
        );
        let per_run = (rss - rss_open) * 1024.0 / started.max(1) as f64;
        table.row(
            "RSS growth since the store opened, per started run (KiB)",
            format!("{per_run:.3}"),
        );
        table.number(&format!("{key}.kib_per_wait"), per_run);
        if trim() {
            let (trimmed, _, split) = memory_split();
            table.row(
                "all parked, after malloc_trim(0): RSS (MiB)",
                format!(
                    "{trimmed:.1} ({split}); {:.3} KiB per started run",
                    (trimmed - rss_open) * 1024.0 / started.max(1) as f64
                ),
            );
        }
        let (rss, _) = memory();
        table.row(
            "claims / parks (woken while parking) / `prepare` bodies run",
            format!(
                "{} / {} ({}) / {}",
                counts.claimed.load(Relaxed),
                counts.parked.load(Relaxed),
                counts.woken_at_park.load(Relaxed),
                PREPARES.load(Relaxed)
            ),
        );

        // Phase 3: idle.
        let mark = Mark::now();
        let before = counts.calls();
        tokio::time::sleep(cfg.idle).await;
        let idle_cpu = mark.cpu_percent();
        let rates = call_rates(&before, &counts.calls(), mark.secs());
        let (rss_idle, _) = memory();
        table.row(
            &format!("idle {} s: CPU", cfg.idle.as_secs()),
            format!("{idle_cpu:.1} %"),
        );
        table.row("idle: store calls per second", rates);
        table.row(
            "after idle: RSS (MiB), change over the idle period (after the trim)",
            format!("{rss_idle:.1} ({:+.1})", rss_idle - rss),
        );
        table.number(&format!("{key}.idle_cpu"), idle_cpu);

        // Phase 4: wake some, one at a time (the others picked are for the pickup phase).
        let woken = &picked(cfg, started).0;
        let before = counts.calls();
        let wakes = wake_one_by_one(&engine, woken).await;
        let per_wake = call_rates(&before, &counts.calls(), woken.len().max(1) as f64);
        report_wakes(table, &wakes, &key);
        table.row("wake: store calls per woken run", per_wake);
        table.row("after the wakes: RSS (MiB)", format!("{:.1}", memory().0));

        // Phase 5: shutdown.
        let t = Instant::now();
        engine
            .shutdown(Duration::from_secs(5))
            .await
            .expect("shutdown");
        let shutdown = t.elapsed();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let workers = engine.store().list_workers().await.expect("list workers");
        table.row(
            "shutdown: `engine.shutdown` / workers registered 1.5 s later",
            format!("{} / {}", dur(shutdown), workers.len()),
        );
        drop(engine);
        table.row("store size", backend.size().await);
        table.number(&format!("{key}.started"), started as f64);
        table.number(&format!("{key}.parked"), parked as f64);
    });
    rt.shutdown_timeout(Duration::from_secs(30));
}

// ---------------------------------------------------------------------------------------------
// Phase 6: a fresh process picks up signalled runs
// ---------------------------------------------------------------------------------------------

/// Signals the runs of `inputs` while no worker runs, then lets a fresh process finish them.
fn pickup_phase(backend: &Backend, inputs: &[u32], parked: u64, table: &mut Table) {
    let rt = runtime();
    let signalled = rt.block_on(async {
        let client = DurableEngine::from_arc(
            backend.open().await,
            WorkerOptions::default().claim_runs(false),
        );
        let mut signalled = Vec::new();
        for &x in inputs {
            let id = run_id(x);
            if client.status(&id).await.expect("status").summary.status == RunStatus::Waiting {
                client
                    .handle::<Gate>(id.clone())
                    .signal(Gate::signals().go, 1)
                    .await
                    .expect("signal");
                signalled.push(x);
            }
        }
        signalled
    });
    rt.shutdown_timeout(Duration::from_secs(30));
    let name = backend.name();
    table.section(&format!(
        "{name}: a fresh process picks up {} runs signalled while no worker ran",
        signalled.len()
    ));
    let inputs: Vec<String> = signalled.iter().map(u32::to_string).collect();
    run_child(
        "pickup",
        &[
            (CHILD_STORE, name.to_owned()),
            (CHILD_LOCATION, backend.location()),
            (CHILD_INPUTS, inputs.join(",")),
            (CHILD_PARKED, parked.to_string()),
        ],
        table,
    );
}

/// The pickup child: opens the store, registers the workflow, waits for the signalled runs.
fn pickup_child(cfg: &Config) {
    let backend = Backend::from_location(
        &std::env::var(CHILD_STORE).expect("store"),
        &std::env::var(CHILD_LOCATION).expect("location"),
    );
    let inputs: Vec<u32> = std::env::var(CHILD_INPUTS)
        .unwrap_or_default()
        .split(',')
        .filter_map(|x| x.parse().ok())
        .collect();
    let parked: u64 = env(CHILD_PARKED, 0);
    let (rss0, _) = memory();
    let rt = runtime();
    rt.block_on(async {
        let t_open = Instant::now();
        let (engine, counts) = counted_engine(backend.open().await);
        let open = t_open.elapsed();
        let (rss_open, _) = memory();
        let t0 = Instant::now();
        engine.register(&Gate).await.expect("register");
        let done = futures::future::join_all(inputs.iter().map(|&x| {
            let engine = engine.clone();
            async move {
                let result =
                    tokio::time::timeout(WAKE_TIMEOUT * 2, engine.wait::<Gate>(&run_id(x))).await;
                (
                    x,
                    t0.elapsed(),
                    matches!(result, Ok(Ok(out)) if out == x + 1),
                )
            }
        }))
        .await;
        let all = t0.elapsed();
        let finished: Vec<Duration> = done.iter().filter(|d| d.2).map(|d| d.1).collect();
        let decided: Vec<Duration> = inputs
            .iter()
            .filter_map(|&x| decide_start(x))
            .map(|at| at.saturating_duration_since(t0))
            .collect();
        let (rss, hwm, split) = memory_split();
        let trimmed = trim().then(memory_split);
        let mark = Mark::now();
        let before = counts.calls();
        tokio::time::sleep(cfg.idle).await;
        let idle_cpu = mark.cpu_percent();
        let rates = call_rates(&before, &counts.calls(), mark.secs());
        let still_parked = count_status(&engine, RunStatus::Waiting).await;
        engine
            .shutdown(Duration::from_secs(5))
            .await
            .expect("shutdown");

        ChildOut::row("RSS before the runtime (MiB)", format!("{rss0:.1}"));
        ChildOut::row(
            "open the store: time / RSS after (MiB)",
            format!("{} / {rss_open:.1}", dur(open)),
        );
        ChildOut::row(
            "`register` to the first / last `decide` started",
            match (decided.iter().min(), decided.iter().max()) {
                (Some(first), Some(last)) => format!("{} / {}", dur(*first), dur(*last)),
                _ => "none started".to_owned(),
            },
        );
        ChildOut::row(
            "`register` to every result returned",
            format!(
                "{} ({} of {} correct)",
                dur(all),
                finished.len(),
                inputs.len()
            ),
        );
        ChildOut::row(
            "claims / parks / `prepare` bodies run",
            format!(
                "{} / {} / {}",
                counts.claimed.load(Relaxed),
                counts.parked.load(Relaxed),
                PREPARES.load(Relaxed)
            ),
        );
        ChildOut::row(
            &format!("after: RSS / peak (MiB), {parked} parked at the start"),
            format!("{rss:.1} / {hwm:.1} ({split})"),
        );
        if let Some((trimmed, _, split)) = trimmed {
            ChildOut::row(
                "after malloc_trim(0): RSS (MiB)",
                format!("{trimmed:.1} ({split})"),
            );
        }
        ChildOut::row(
            &format!("idle {} s: CPU", cfg.idle.as_secs()),
            format!("{idle_cpu:.1} %"),
        );
        ChildOut::row("idle: store calls per second", rates);
        ChildOut::row("runs still parked", still_parked.to_string());
        ChildOut::number("pickup.rss", rss);
        ChildOut::number("pickup.rss_open", rss_open);
    });
    rt.shutdown_timeout(Duration::from_secs(30));
}

// ---------------------------------------------------------------------------------------------
// Ratios and main
// ---------------------------------------------------------------------------------------------

/// Engine figures over the baseline's.
fn ratios(table: &mut Table, key: &str, name: &str) {
    let get = |k: &str| table.numbers.get(k).copied();
    let ratio = |engine: Option<f64>, base: Option<f64>| match (engine, base) {
        (Some(e), Some(b)) if b > 0.0 => format!("{:.0}x", e / b),
        _ => "-".to_owned(),
    };
    let secs = |v: Option<f64>| v.map_or("-".to_owned(), |s| dur(Duration::from_secs_f64(s)));
    let mut rows = Vec::new();
    for (what, k) in [
        ("wake p50", "wake_p50"),
        ("wake p99", "wake_p99"),
        ("wake max", "wake_max"),
        ("signal to result, p50", "done_p50"),
    ] {
        let (e, b) = (get(&format!("{key}.{k}")), get(&format!("baseline.{k}")));
        rows.push((
            format!("{what}: {name} engine vs tokio oneshot"),
            format!("{} vs {} = {}", secs(e), secs(b), ratio(e, b)),
        ));
    }
    let (e, b) = (
        get(&format!("{key}.kib_per_wait")),
        get("baseline.kib_per_wait"),
    );
    rows.push((
        format!("RSS per waiting run/task: {name} engine vs tokio task"),
        format!(
            "{:.3} KiB vs {:.3} KiB = {}",
            e.unwrap_or(f64::NAN),
            b.unwrap_or(f64::NAN),
            match (e, b) {
                (Some(e), Some(b)) if b > 0.0 => format!("{:.2}x", e / b),
                _ => "-".to_owned(),
            }
        ),
    ));
    let (e, b) = (get(&format!("{key}.idle_cpu")), get("baseline.idle_cpu"));
    rows.push((
        format!("idle CPU: {name} engine vs tokio"),
        format!(
            "{:.1} % vs {:.1} %",
            e.unwrap_or(f64::NAN),
            b.unwrap_or(f64::NAN)
        ),
    ));
    for (what, value) in rows {
        table.row(&what, value);
    }
}

/// The PostgreSQL server to measure on: `WORKFLOW_TEST_POSTGRES_URL`, if set.
fn postgres_url() -> Option<String> {
    std::env::var("WORKFLOW_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// The stores to measure: SQLite, and PostgreSQL when the bench is built with the `postgres`
/// feature and [`postgres_url`] is set.
fn backends() -> Vec<Backend> {
    #[allow(unused_mut)]
    let mut backends = vec![Backend::sqlite()];
    #[cfg(feature = "postgres")]
    if let Some(server) = postgres_url() {
        backends.push(Backend::Postgres(
            runtime().block_on(pg::Database::fresh(&server)),
        ));
    }
    backends
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches`: nothing to run as a test
    }
    let cfg = Config::from_env();
    match std::env::var(CHILD).as_deref() {
        Ok("baseline") => return baseline_child(&cfg),
        Ok("pickup") => return pickup_child(&cfg),
        Ok("engine") => return engine_child(&cfg),
        _ => {}
    }
    let mut table = Table::default();
    table.section(&format!(
        "tokio baseline: {} tasks, each awaiting a oneshot",
        cfg.runs
    ));
    eprintln!("baseline: {} tokio tasks", cfg.runs);
    run_child("baseline", &[], &mut table);

    let mut measured = Vec::new();
    #[cfg(not(feature = "postgres"))]
    if postgres_url().is_some() {
        table.section("PostgreSQL");
        table.row(
            "not measured",
            "built without the `postgres` feature (add --features postgres)",
        );
    }
    for backend in backends() {
        let name = backend.name();
        eprintln!("{name}: {}", backend.location());
        table.section(&format!("{name}: the process that starts the runs"));
        run_child(
            "engine",
            &[
                (CHILD_STORE, name.to_owned()),
                (CHILD_LOCATION, backend.location()),
            ],
            &mut table,
        );
        let key = name.to_lowercase();
        let number = |what: &str| table.numbers.get(&format!("{key}.{what}")).copied();
        if let (true, Some(started), Some(parked)) =
            (cfg.pickup, number("started"), number("parked"))
        {
            let pickup = picked(&cfg, started as u64).1;
            if !pickup.is_empty() {
                pickup_phase(&backend, &pickup, parked as u64, &mut table);
            }
        }
        runtime().block_on(backend.cleanup());
        measured.push(name);
    }

    table.section("ratios (engine / baseline)");
    for name in measured {
        ratios(&mut table, &name.to_lowercase(), name);
    }
    table.print();
}
