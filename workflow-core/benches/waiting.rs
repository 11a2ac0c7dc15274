//! Many runs waiting on a signal in the SQLite store: the engine process's memory and CPU while
//! they wait, and the time to recover them all in a fresh engine. Prints a table; no timing
//! assertions.
//!
//! `cargo bench -p workflow-core --bench waiting`
//!
//! The workflow has two steps: `prepare`, then `decide`, which takes a `Signal<u32>`. Each run
//! is started with `DurableEngine::start` and ends up waiting for its signal (status Waiting).
//!
//! Phases, each on its own tokio runtime (multi_thread, 2 workers):
//! 1. **Start.** Start `WAITING_RUNS` runs (default 100,000), `WAITING_CONCURRENCY` (default
//!    256) `start` calls in flight at a time. No new start is issued after
//!    `WAITING_BUDGET_SECS` (default 120); the table then says how many were started. Then
//!    wait until every started run is waiting: counted in process (below), then confirmed
//!    with `engine.list(Some(RunStatus::Waiting))`.
//! 2. **Idle.** All runs waiting, nothing else to do: CPU use and `has_signal` reads per
//!    second, in 3 consecutive windows of `WAITING_IDLE_SECS` (default 15) each (a wait
//!    re-reads the store at growing intervals, so the rate falls as the waits age).
//! 3. **Shutdown.** Drop the engine and shut the runtime down (which drops every run's task:
//!    the engine has no shutdown of its own, and its background tasks hold clones of it).
//! 4. **Recover.** In a fresh process (this binary again, with `WAITING_RECOVER_DB` set), so
//!    its memory figures are its own: open a fresh engine on the same file and call
//!    `engine.recover(Gate)`; time the call, then the time until every run waits for its
//!    signal again in this process. Then the idle measurement again.
//!
//! "Waiting in process" is counted by a thin [`Store`] wrapper around the SQLite store that
//! counts `set_waiting(Some(..))` calls: the engine makes one each time a run begins (or,
//! after recovery, resumes) its wait. The store's status column cannot show recovery: the
//! runs are Waiting there before, during and after it. The wrapper also counts `has_signal`
//! calls: each waiting run's poll for signals sent by other processes (every 200 ms at
//! first, then at doubling intervals up to 10 s, since commit 0252e1a).
//!
//! Memory is VmRSS (and the peak, VmHWM) from `/proc/self/status`; CPU is user + system time
//! of the whole process from `/proc/self/stat` (100 ticks per second assumed), so 200 % is
//! both cores of a 2-core machine. Env `DURABLE_BENCH_DIR` picks the directory for the
//! database file (default: the system temp dir); the file is deleted at the end unless
//! `WAITING_KEEP_DB` is set. Run the recovery phase alone on a kept file with
//! `WAITING_RECOVER_DB=<file> WAITING_RECOVER_RUNS=<runs> target/release/deps/waiting-<hash>`
//! (it prints `ROW` lines).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::StreamExt;
use tokio::runtime::Runtime;
use workflow_core::prelude::*;
use workflow_core::store::{JournalRecord, NewRun, RunRecord, SqliteStore, Store, StoreError};

/// Two steps; the second waits for signal `go`.
#[derive(Clone, Copy)]
struct Gate;

#[workflow]
impl Gate {
    #[step]
    async fn prepare(&self, x: u32) -> u32 {
        x
    }
    #[step(after = prepare)]
    async fn decide(&self, x: u32, go: Signal<u32>) -> u32 {
        x + go.received().unwrap_or(0)
    }
}

// ---------------------------------------------------------------------------------------------
// A store wrapper that counts the calls the measurement needs
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Counts {
    /// `set_waiting(Some(..))`: a run began (or resumed) its wait in this process.
    waits: AtomicU64,
    /// `has_signal`: a waiting run polled the store.
    polls: AtomicU64,
    /// Every other read (`load_run`, `journal`, `list`).
    reads: AtomicU64,
    /// Every other write.
    writes: AtomicU64,
}

struct Counted {
    inner: SqliteStore,
    counts: Arc<Counts>,
}

fn counted<'a, T: 'a>(
    counter: &AtomicU64,
    future: impl Future<Output = T> + Send + 'a,
) -> BoxFuture<'a, T> {
    counter.fetch_add(1, Relaxed);
    Box::pin(future)
}

impl Store for Counted {
    fn create_run<'a>(&'a self, run: &'a NewRun) -> BoxFuture<'a, Result<RunRecord, StoreError>> {
        counted(&self.counts.writes, self.inner.create_run(run))
    }
    fn load_run<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>> {
        counted(&self.counts.reads, self.inner.load_run(run_id))
    }
    fn journal<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Vec<JournalRecord>, StoreError>> {
        counted(&self.counts.reads, self.inner.journal(run_id))
    }
    fn append<'a>(
        &'a self,
        run_id: &'a RunId,
        records: Vec<JournalRecord>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        counted(&self.counts.writes, self.inner.append(run_id, records))
    }
    fn set_waiting<'a>(
        &'a self,
        run_id: &'a RunId,
        waiting_for: Option<String>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let waits = waiting_for.is_some();
        let counts = self.counts.clone();
        counted(&self.counts.writes, async move {
            let result = self.inner.set_waiting(run_id, waiting_for).await;
            if waits && result.is_ok() {
                counts.waits.fetch_add(1, Relaxed);
            }
            result
        })
    }
    fn finish<'a>(
        &'a self,
        run_id: &'a RunId,
        status: RunStatus,
        output: Option<Vec<u8>>,
        error: Option<String>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        counted(
            &self.counts.writes,
            self.inner.finish(run_id, status, output, error),
        )
    }
    fn list<'a>(
        &'a self,
        status: Option<RunStatus>,
    ) -> BoxFuture<'a, Result<Vec<RunRecord>, StoreError>> {
        counted(&self.counts.reads, self.inner.list(status))
    }
    fn send_signal<'a>(
        &'a self,
        run_id: &'a RunId,
        name: &'a str,
        payload: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        counted(
            &self.counts.writes,
            self.inner.send_signal(run_id, name, payload),
        )
    }
    fn has_signal<'a>(
        &'a self,
        run_id: &'a RunId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        counted(&self.counts.polls, self.inner.has_signal(run_id, name))
    }
    fn consume_signal<'a>(
        &'a self,
        run_id: &'a RunId,
        name: &'a str,
        record: JournalRecord,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        counted(
            &self.counts.writes,
            self.inner.consume_signal(run_id, name, record),
        )
    }
}

async fn open(path: &Path) -> (DurableEngine, Arc<Counts>) {
    let counts = Arc::new(Counts::default());
    let store = Counted {
        inner: SqliteStore::open(path).await.expect("open the store"),
        counts: counts.clone(),
    };
    (DurableEngine::new(store), counts)
}

// ---------------------------------------------------------------------------------------------
// Process figures
// ---------------------------------------------------------------------------------------------

/// VmRSS and VmHWM in MiB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// User + system CPU time of the process.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime and stime are the 12th
    // and 13th of them.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    Duration::from_millis(fields.iter().sum::<u64>() * 10)
}

/// CPU time and wall time since a mark, as a percentage of one core.
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
    fn cpu_percent(&self) -> f64 {
        (cpu() - self.cpu).as_secs_f64() / self.wall.elapsed().as_secs_f64() * 100.0
    }
    fn cpu_secs(&self) -> f64 {
        (cpu() - self.cpu).as_secs_f64()
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

/// Prints progress to stderr every 5 s until `stop` is set.
fn monitor(
    counts: Arc<Counts>,
    target: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    phase: &'static str,
) {
    tokio::spawn(async move {
        let started = Instant::now();
        let mut mark = Mark::now();
        let mut polls = counts.polls.load(Relaxed);
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            if stop.load(Relaxed) {
                return;
            }
            let now_polls = counts.polls.load(Relaxed);
            let rate = (now_polls - polls) as f64 / mark.wall.elapsed().as_secs_f64();
            eprintln!(
                "  [{phase} {:>5.0} s] target {:>6}, waiting {:>6}, polls {:>7.0}/s, CPU {:>3.0} %, RSS {:>6.0} MiB",
                started.elapsed().as_secs_f64(),
                target.load(Relaxed),
                counts.waits.load(Relaxed),
                rate,
                mark.cpu_percent(),
                memory().0
            );
            (mark, polls) = (Mark::now(), now_polls);
        }
    });
}

/// Waits until `counts.waits` reaches `target` (checked every 100 ms); gives up after `limit`.
async fn all_waiting(counts: &Counts, target: u64, limit: Duration) -> bool {
    let started = Instant::now();
    while counts.waits.load(Relaxed) < target {
        if started.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    true
}

/// Counts the store's Waiting runs until there are `target` (every second, up to `limit`).
async fn confirm_waiting(engine: &DurableEngine, target: u64, limit: Duration) -> u64 {
    let started = Instant::now();
    loop {
        let waiting = engine
            .list(Some(RunStatus::Waiting))
            .await
            .expect("list")
            .len() as u64;
        if waiting >= target || started.elapsed() > limit {
            return waiting;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Idle figures: CPU % and `has_signal` polls per second over `secs`.
async fn idle(counts: &Counts, secs: u64) -> (f64, f64) {
    let mark = Mark::now();
    let polls = counts.polls.load(Relaxed);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let rate = (counts.polls.load(Relaxed) - polls) as f64 / mark.wall.elapsed().as_secs_f64();
    (mark.cpu_percent(), rate)
}

fn db_path() -> PathBuf {
    let dir = std::env::var_os("DURABLE_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let path = dir.join(format!("workflow-bench-waiting-{}.db", std::process::id()));
    remove_db(&path);
    path
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

fn file_mib(path: &Path) -> f64 {
    ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok())
        .map(|m| m.len() as f64 / (1024.0 * 1024.0))
        .sum()
}

fn line(what: &str, value: String) {
    println!("| {what:<58} | {value:>24} |");
}

/// Consecutive idle measurements (signal waits poll less and less often as they age).
const IDLE_WINDOWS: u64 = 3;

/// Env of the recovery process: the database to recover and how many runs wait in it.
const RECOVER_DB: &str = "WAITING_RECOVER_DB";
const RECOVER_RUNS: &str = "WAITING_RECOVER_RUNS";

/// Phase 4, in its own process: recover every waiting run in a fresh engine. Prints its rows
/// as `ROW\t<measure>\t<value>` lines for the parent.
fn recover_process(path: &Path, started: u64, idle_secs: u64, settle: Duration) {
    let put = |what: &str, value: String| println!("ROW\t{what}\t{value}");
    let (rss0, _) = memory();
    put("recover process: RSS at start (MiB)", format!("{rss0:.1}"));
    let rt = runtime();
    rt.block_on(async {
        let t0 = Mark::now();
        let (engine, counts) = open(path).await;
        let open_secs = t0.wall.elapsed().as_secs_f64();
        let target = Arc::new(AtomicU64::new(started));
        let stop = Arc::new(AtomicBool::new(false));
        monitor(counts.clone(), target, stop.clone(), "recover");
        let t1 = Instant::now();
        let recovery = engine.recover(Gate).await.expect("recover");
        let recover_secs = t1.elapsed().as_secs_f64();
        let back = all_waiting(&counts, started, settle).await;
        let all_secs = t0.wall.elapsed().as_secs_f64();
        let all_cpu = t0.cpu_secs();
        let (rss, hwm) = memory();
        put("recover: open the store (s)", format!("{open_secs:.2}"));
        put(
            "recover: `recover` call (s) / runs resumed",
            format!("{recover_secs:.1} / {}", recovery.resumed.len()),
        );
        put(
            "recover: open to all waiting again (s)",
            if back {
                format!("{all_secs:.1}")
            } else {
                format!(
                    "> {all_secs:.1} (gave up at {})",
                    counts.waits.load(Relaxed)
                )
            },
        );
        put(
            "recover: CPU time (s) / average CPU",
            format!("{all_cpu:.1} / {:.0} %", all_cpu / all_secs * 100.0),
        );
        put(
            "recovered: RSS / peak RSS (MiB)",
            format!("{rss:.0} / {hwm:.0}"),
        );
        put(
            "recovered: RSS per waiting run (KiB)",
            format!("{:.1}", (rss - rss0) * 1024.0 / started as f64),
        );
        for window in 1..=IDLE_WINDOWS {
            let (cpu, polls) = idle(&counts, idle_secs).await;
            put(
                &format!(
                    "recovered, idle {}-{} s: CPU / polls/s (per run)",
                    (window - 1) * idle_secs,
                    window * idle_secs
                ),
                format!("{cpu:.0} % / {polls:.0} ({:.2})", polls / started as f64),
            );
        }
        stop.store(true, Relaxed);
    });
    rt.shutdown_timeout(Duration::from_secs(60));
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches`: nothing to run as a test
    }
    let runs: u64 = env("WAITING_RUNS", 100_000);
    let concurrency: usize = env("WAITING_CONCURRENCY", 256);
    let budget = Duration::from_secs(env("WAITING_BUDGET_SECS", 120));
    let idle_secs: u64 = env("WAITING_IDLE_SECS", 15);
    let settle = Duration::from_secs(env("WAITING_SETTLE_SECS", 600));
    if let Some(path) = std::env::var_os(RECOVER_DB) {
        recover_process(Path::new(&path), env(RECOVER_RUNS, 0), idle_secs, settle);
        return;
    }
    let path = db_path();
    let (rss0, _) = memory();
    let mut table: Vec<(String, String)> = Vec::new();
    let mut put = |what: &str, value: String| table.push((what.to_owned(), value));
    put("RSS before the engine (MiB)", format!("{rss0:.1}"));

    // Phase 1: start the runs, wait until all wait.
    let rt = runtime();
    let started = rt.block_on(async {
        let (engine, counts) = open(&path).await;
        let issued = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        monitor(counts.clone(), issued.clone(), stop.clone(), "start");
        let t0 = Mark::now();
        let deadline = Instant::now() + budget;
        let mut starts = futures::stream::iter(0..runs)
            .take_while(|_| std::future::ready(Instant::now() < deadline))
            .map(|i| {
                issued.fetch_add(1, Relaxed);
                let engine = engine.clone();
                async move { engine.start(Gate, i as u32).await.expect("start") }
            })
            .buffer_unordered(concurrency);
        let mut started = 0u64;
        while starts.next().await.is_some() {
            started += 1;
        }
        drop(starts);
        let start_secs = t0.wall.elapsed().as_secs_f64();
        let waiting_in_process = all_waiting(&counts, started, settle).await;
        let all_secs = t0.wall.elapsed().as_secs_f64();
        let all_cpu = t0.cpu_secs();
        let (rss, hwm) = memory();
        let listed = confirm_waiting(&engine, started, Duration::from_secs(60)).await;
        put("runs requested", format!("{runs}"));
        put(
            "runs started (start calls returned)",
            format!(
                "{started}{}",
                if started < runs { " (budget hit)" } else { "" }
            ),
        );
        put(
            "start: wall time of the start calls (s)",
            format!("{start_secs:.1}"),
        );
        put(
            "start: until all wait in process (s)",
            if waiting_in_process {
                format!("{all_secs:.1}")
            } else {
                format!("> {all_secs:.1} (gave up)")
            },
        );
        put(
            "start: runs per second (to all waiting)",
            format!("{:.0}", started as f64 / all_secs),
        );
        put(
            "start: CPU time (s) / average CPU",
            format!("{all_cpu:.1} / {:.0} %", all_cpu / all_secs * 100.0),
        );
        put(
            "start: Waiting runs listed by the store",
            format!("{listed}"),
        );
        put("after that list: RSS (MiB)", format!("{:.0}", memory().0));
        put(
            "all waiting: RSS / peak RSS (MiB)",
            format!("{rss:.0} / {hwm:.0}"),
        );
        put(
            "all waiting: RSS per waiting run (KiB)",
            format!("{:.1}", (rss - rss0) * 1024.0 / started as f64),
        );
        for window in 1..=IDLE_WINDOWS {
            let (cpu, polls) = idle(&counts, idle_secs).await;
            put(
                &format!(
                    "idle {}-{} s: CPU / has_signal polls/s (per run)",
                    (window - 1) * idle_secs,
                    window * idle_secs
                ),
                format!("{cpu:.0} % / {polls:.0} ({:.2})", polls / started as f64),
            );
        }
        stop.store(true, Relaxed);
        drop(engine);
        started
    });
    let t = Instant::now();
    rt.shutdown_timeout(Duration::from_secs(60));
    let (rss, _) = memory();
    put(
        "shutdown: runtime shutdown (s) / RSS after (MiB)",
        format!("{:.1} / {rss:.0}", t.elapsed().as_secs_f64()),
    );
    put(
        "database file + WAL (MiB)",
        format!("{:.0}", file_mib(&path)),
    );

    // Phase 4: recover in a fresh engine, in a fresh process (so its memory is its own).
    let child = std::process::Command::new(std::env::current_exe().expect("current exe"))
        .env(RECOVER_DB, &path)
        .env(RECOVER_RUNS, started.to_string())
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run the recovery process");
    assert!(child.status.success(), "the recovery process failed");
    for row in String::from_utf8_lossy(&child.stdout).lines() {
        if let Some((what, value)) = row.strip_prefix("ROW\t").and_then(|r| r.split_once('\t')) {
            put(what, value.to_owned());
        }
    }
    if std::env::var_os("WAITING_KEEP_DB").is_some() {
        eprintln!(
            "kept {} (recover it again: {RECOVER_DB}={} {RECOVER_RUNS}={started} <this binary>)",
            path.display(),
            path.display()
        );
    } else {
        remove_db(&path);
    }

    println!();
    println!("| {:<58} | {:>24} |", "measure", "value");
    println!("|{:-<60}|{:->26}|", "", "");
    for (what, value) in table {
        line(&what, value);
    }
}
