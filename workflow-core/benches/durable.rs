//! Durable throughput on SQLite, beside the in-memory engine and a hand-written sqlx program
//! doing the same commits, in the same process. Prints two tables; no timing assertions.
//!
//! `cargo bench -p workflow-core --bench durable` (`DURABLE_SUMMARY_ONLY=1`: only the second,
//! issue-12 table)
//!
//! Workloads:
//! - `chain_1000`: one run of a 1,000-step chain (each step's output is committed before the
//!   next step starts, so this is the sequential commit rate of a single run);
//! - `seq_100x10`: 100 runs of a 10-step chain, one after another (the sequential rate and
//!   commit latency of the workflow an issue-6 target is set for);
//! - `runs_100x10`: 100 concurrent runs of the same 10-step chain (group commit batches the
//!   commits of many runs into one transaction).
//!
//! Engines: in memory; SQLite with group commit (default); SQLite without (one transaction
//! per write). Baseline: a hand-written sqlx loop that inserts one row per step and commits
//! each (WAL, `synchronous = FULL`), sequentially for the chain and for `seq_100x10` (1,000
//! inserts in a row) and from 100 tasks of 10 inserts for `runs_100x10`.
//!
//! Commit latency, from the workflow's view: every step of the 10-step chain pushes
//! `Instant::now()` into its run's Vec when it starts. Step k+1 starts once step k's output is
//! committed, so the gap between consecutive starts is the commit latency plus the step's own
//! (tiny) cost and the scheduler's. Each run gives 9 gaps (the run's creation before step 0
//! and the last commit after step 9 are not in them); the table prints their p50 and p99
//! (nearest rank). The hand-written baseline records the start of each insert the same way.
//!
//! The issue-12 table (SQLite with its default group commit, each figure the median of
//! `REPS` repetitions interleaved with its baseline's, after one warm-up of each):
//! - `chain_100`: one run of a 100-step chain against the hand-written loop of one `INSERT` +
//!   commit per step, as steps/s (target: the engine at least 0.9x the loop);
//! - `for_each_1000`: one run whose `for_each` step has 1,000 items, as committed items/s
//!   (target: at least 10,000/s), against the same loop making 1,000 commits;
//! - `runs_100x10`: 100 concurrent runs of the 10-step chain, as steps/s (reported against
//!   issue 12's 7,600-15,300 steps/s), against 100 tasks of the loop's 10 commits.
//!
//! Env `DURABLE_BENCH_DIR` picks the directory for the database files (default: the system
//! temp dir); they are deleted at the end.

#[path = "generated/chain_100.rs"]
mod chain_100;
#[path = "generated/chain_1000.rs"]
mod chain_1000;
#[path = "common/fan_out.rs"]
mod fan_out;

use fan_out::FanOut;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use workflow_core::prelude::*;
use workflow_core::store::{SqliteOptions, SqliteStore};
use workflow_core::Durable;

use chain_100::Chain100;
use chain_1000::Chain1000;

/// Start times of the steps of one run.
type Starts = Arc<Mutex<Vec<Instant>>>;

/// A 10-step chain; every step records its start time first.
#[derive(Default)]
struct Ten {
    starts: Starts,
}

impl Ten {
    fn mark(&self) {
        self.starts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Instant::now());
    }
}

#[workflow]
impl Ten {
    #[step]
    async fn s0(&self, x: u64) -> u64 {
        self.mark();
        x + 1
    }
    #[step(after = s0)]
    async fn s1(&self, x: u64) -> u64 {
        self.mark();
        x + 1
    }
    #[step(after = s1)]
    async fn s2(&self, x: u64) -> u64 {
        self.mark();
        x + 1
    }
    #[step(after = s2)]
    async fn s3(&self, x: u64) -> u64 {
        self.mark();
        x + 1
    }
    #[step(after = s3)]
    async fn s4(&self, x: u64) -> u64 {
        self.mark();
        x + 1
    }
    #[step(after = s4)]
    async fn s5(&self, x: u64) -> u64 {
        self.mark();
        x + 1
    }
    #[step(after = s5)]
    async fn s6(&self, x: u64) -> u64 {
        self.mark();
        x + 1
    }
    #[step(after = s6)]
    async fn s7(&self, x: u64) -> u64 {
        self.mark();
        x + 1
    }
    #[step(after = s7)]
    async fn s8(&self, x: u64) -> u64 {
        self.mark();
        x + 1
    }
    #[step(after = s8)]
    async fn s9(&self, x: u64) -> u64 {
        self.mark();
        x + 1
    }
}

/// Items of the `for_each_1000` workload.
const ITEMS: u64 = 1000;

const RUNS: u64 = 100;

/// Database files made by this process, deleted at the end.
static DB_FILES: Mutex<Vec<std::path::PathBuf>> = Mutex::new(Vec::new());

fn db_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::var_os("DURABLE_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let path = dir.join(format!("workflow-bench-{name}-{}.db", std::process::id()));
    remove_db(&path);
    DB_FILES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(path.clone());
    path
}

fn remove_db(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

async fn sqlite_engine(name: &str, group_commit: bool) -> DurableEngine {
    let store = SqliteStore::open_with(db_path(name), SqliteOptions { group_commit })
        .await
        .expect("open the store");
    DurableEngine::new(store)
}

async fn chain_in_memory() -> Duration {
    let started = Instant::now();
    let out = Engine::in_memory()
        .run(&Chain1000, 0)
        .await
        .expect("chain runs");
    assert_eq!(out, 1000);
    started.elapsed()
}

async fn chain_durable(engine: DurableEngine) -> Duration {
    durable_run(&engine, &Chain1000, 0, 1000).await
}

/// One run of `workflow` on `input`, checked against `expected`.
async fn durable_run<W>(engine: &DurableEngine, workflow: &W, input: u64, expected: u64) -> Duration
where
    W: Durable<Input = u64, Output = u64> + Sync,
{
    let started = Instant::now();
    let out = engine.run(workflow, input).await.expect("run");
    assert_eq!(out, expected);
    started.elapsed()
}

/// The engine a `Ten` workload runs on.
#[derive(Clone)]
enum Runner {
    InMemory(Engine),
    Durable(DurableEngine),
}

impl Runner {
    async fn run(&self, input: u64, starts: Starts) -> u64 {
        let workflow = Ten { starts };
        match self {
            Runner::InMemory(engine) => engine.run(&workflow, input).await,
            Runner::Durable(engine) => engine.run(&workflow, input).await,
        }
        .expect("run")
    }
}

/// What a 10-step workload measured: total time and the gaps between consecutive step starts.
struct Measured {
    elapsed: Duration,
    gaps: Vec<Duration>,
}

fn gaps_of(runs: &[Starts]) -> Vec<Duration> {
    let mut gaps = Vec::new();
    for starts in runs {
        let starts = starts.lock().unwrap_or_else(|p| p.into_inner());
        gaps.extend(starts.windows(2).map(|w| w[1] - w[0]));
    }
    gaps
}

/// `RUNS` runs of `Ten`, one after another.
async fn ten_sequential(runner: Runner) -> Measured {
    let runs: Vec<Starts> = (0..RUNS).map(|_| Starts::default()).collect();
    let started = Instant::now();
    for (i, starts) in runs.iter().enumerate() {
        assert_eq!(runner.run(i as u64, starts.clone()).await, i as u64 + 10);
    }
    let elapsed = started.elapsed();
    Measured {
        elapsed,
        gaps: gaps_of(&runs),
    }
}

/// `RUNS` runs of `Ten`, all in flight at once (one task each).
async fn ten_concurrent(runner: Runner) -> Measured {
    let runs: Vec<Starts> = (0..RUNS).map(|_| Starts::default()).collect();
    let started = Instant::now();
    let handles: Vec<_> = runs
        .iter()
        .enumerate()
        .map(|(i, starts)| {
            let (runner, starts) = (runner.clone(), starts.clone());
            tokio::spawn(async move { runner.run(i as u64, starts).await })
        })
        .collect();
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.await.expect("join"), i as u64 + 10);
    }
    let elapsed = started.elapsed();
    Measured {
        elapsed,
        gaps: gaps_of(&runs),
    }
}

/// The hand-written baseline: a journal table on its own SQLite file with the store's pragmas
/// (WAL, `synchronous = FULL`, one writer connection).
struct RawSqlx {
    pool: Arc<SqlitePool>,
}

impl RawSqlx {
    async fn open(name: &str) -> Self {
        let options = SqliteConnectOptions::from_str("sqlite:")
            .expect("options")
            .filename(db_path(name))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("connect");
        sqlx::query("CREATE TABLE journal (run INTEGER, seq INTEGER, payload BLOB)")
            .execute(&pool)
            .await
            .expect("create");
        RawSqlx {
            pool: Arc::new(pool),
        }
    }

    /// One `INSERT` + commit per step, `tasks` tasks of `steps` steps each; each task records
    /// the start of each insert.
    async fn run(&self, tasks: u64, steps: u64) -> Measured {
        let runs: Vec<Starts> = (0..tasks).map(|_| Starts::default()).collect();
        let started = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .zip(&runs)
            .map(|(run, starts)| {
                let (pool, starts) = (self.pool.clone(), starts.clone());
                tokio::spawn(async move {
                    let mut value = run;
                    for seq in 0..steps {
                        starts
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(Instant::now());
                        value += 1;
                        sqlx::query("INSERT INTO journal (run, seq, payload) VALUES (?, ?, ?)")
                            .bind(run as i64)
                            .bind(seq as i64)
                            .bind(value.to_string().into_bytes())
                            .execute(&*pool)
                            .await
                            .expect("insert");
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.await.expect("join");
        }
        let elapsed = started.elapsed();
        Measured {
            elapsed,
            gaps: gaps_of(&runs),
        }
    }
}

/// A fresh [`RawSqlx`] run once.
async fn raw_sqlx(name: &str, tasks: u64, steps: u64) -> Measured {
    RawSqlx::open(name).await.run(tasks, steps).await
}

/// Nearest-rank percentile, in µs.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e6
}

fn row(workload: &str, engine: &str, steps: u64, measured: &Measured, reference: &Measured) {
    let elapsed = measured.elapsed;
    let rate = steps as f64 / elapsed.as_secs_f64();
    let per_step = elapsed.as_secs_f64() * 1e6 / steps as f64;
    let ratio = elapsed.as_secs_f64() / reference.elapsed.as_secs_f64();
    let (p50, p99) = if measured.gaps.is_empty() {
        ("–".to_owned(), "–".to_owned())
    } else {
        let mut gaps = measured.gaps.clone();
        gaps.sort();
        // One decimal below 100 µs (the in-memory gaps), none above.
        let show = |us: f64| format!("{us:.0$}", usize::from(us < 100.0));
        (show(percentile(&gaps, 50.0)), show(percentile(&gaps, 99.0)))
    };
    println!(
        "| {workload:<12} | {engine:<28} | {:>9.1} | {rate:>12.0} | {per_step:>10.2} | {ratio:>10.2}x | {p50:>10} | {p99:>10} |",
        elapsed.as_secs_f64() * 1e3
    );
}

/// A workload without step start times (the 1,000-step chain).
fn timed(elapsed: Duration) -> Measured {
    Measured {
        elapsed,
        gaps: Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Issue-12 table
// ---------------------------------------------------------------------------------------------

/// Timed repetitions of each issue-12 workload and of its baseline (after one warm-up each).
const REPS: usize = 11;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// Median times of `engine` and `baseline`, their repetitions interleaved so a noisy
/// neighbour hits both alike.
async fn interleaved(
    mut engine: impl AsyncFnMut() -> Duration,
    mut baseline: impl AsyncFnMut() -> Duration,
) -> (Duration, Duration) {
    baseline().await;
    engine().await;
    let (mut e, mut b) = (Vec::with_capacity(REPS), Vec::with_capacity(REPS));
    for _ in 0..REPS {
        b.push(baseline().await);
        e.push(engine().await);
    }
    (median(e), median(b))
}

/// An issue-12 target, printed with its status (never asserted).
enum Target {
    /// The engine's rate at least this many times the baseline's.
    MinRatio(f64),
    /// The engine's rate at least this many units per second.
    MinRate(f64),
    /// No target: a reference figure to report against.
    Reference(&'static str),
}

impl Target {
    fn show(&self, rate: f64, ratio: f64) -> String {
        let status = |met: bool| if met { "met" } else { "missed" };
        match *self {
            Target::MinRatio(min) => format!(">= {min:.1}x: {}", status(ratio >= min)),
            Target::MinRate(min) => format!(">= {min:.0}/s: {}", status(rate >= min)),
            Target::Reference(text) => text.to_owned(),
        }
    }
}

/// Prints one row: `units` (named `unit`) per run of the engine and of the baseline, their
/// median times.
fn issue12_row(
    workload: &str,
    units: u64,
    unit: &str,
    (engine, baseline): (Duration, Duration),
    target: Target,
) {
    let rate = |d: Duration| units as f64 / d.as_secs_f64();
    let ratio = rate(engine) / rate(baseline);
    println!(
        "| {workload:<14} | {unit:<7} | {:>9.1} | {:>11.0} | {:>11.1} | {:>13.0} | {ratio:>6.2}x | {:<32} |",
        engine.as_secs_f64() * 1e3,
        rate(engine),
        baseline.as_secs_f64() * 1e3,
        rate(baseline),
        target.show(rate(engine), ratio)
    );
}

/// The issue-12 workloads on SQLite (default group commit) beside the hand-written loop.
async fn issue12() {
    println!();
    println!("Issue 12, SQLite (WAL, synchronous = FULL, group commit); median of {REPS} runs; rate = units/s");
    println!("| workload       | unit    | engine ms | engine rate | baseline ms | baseline rate | ratio   | issue-12 target                  |");
    println!("|----------------|---------|-----------|-------------|-------------|---------------|---------|----------------------------------|");
    let engine = sqlite_engine("issue12", true).await;
    let raw = RawSqlx::open("issue12-raw").await;
    let raw_run = |tasks, steps| {
        let raw = &raw;
        async move || raw.run(tasks, steps).await.elapsed
    };

    let times = interleaved(
        async || durable_run(&engine, &Chain100, 0, 100).await,
        raw_run(1, 100),
    )
    .await;
    issue12_row("chain_100", 100, "step", times, Target::MinRatio(0.9));

    let times = interleaved(
        async || durable_run(&engine, &FanOut, ITEMS, ITEMS * (ITEMS + 1) / 2).await,
        raw_run(1, ITEMS),
    )
    .await;
    issue12_row(
        "for_each_1000",
        ITEMS,
        "item",
        times,
        Target::MinRate(10_000.0),
    );

    let runner = Runner::Durable(engine.clone());
    let times = interleaved(
        async || ten_concurrent(runner.clone()).await.elapsed,
        raw_run(RUNS, 10),
    )
    .await;
    issue12_row(
        "runs_100x10",
        RUNS * 10,
        "step",
        times,
        Target::Reference("today 7,600-15,300 steps/s"),
    );
    println!("(ratio = engine rate / baseline rate; baseline: the hand-written sqlx loop, one INSERT + commit per unit: 1 task of 100, 1 task of 1,000, 100 tasks of 10)");
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for the list of benchmarks: there is none to list
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        if std::env::var_os("DURABLE_SUMMARY_ONLY").is_none() {
            throughput_table().await;
        }
        issue12().await;
    });
    drop(runtime);
    for path in DB_FILES.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        remove_db(path);
    }
}

/// The first table: every workload on every engine, with commit latencies.
async fn throughput_table() {
    println!("| workload     | engine                       |     ms    |    steps/s   |  µs/step   | vs raw sqlx | p50 gap µs | p99 gap µs |");
    println!("|--------------|------------------------------|-----------|--------------|------------|-------------|------------|------------|");
    let raw = raw_sqlx("raw-chain", 1, 1000).await;
    let raw = timed(raw.elapsed);
    row(
        "chain_1000",
        "hand-written sqlx (baseline)",
        1000,
        &raw,
        &raw,
    );
    row(
        "chain_1000",
        "in memory",
        1000,
        &timed(chain_in_memory().await),
        &raw,
    );
    let group = chain_durable(sqlite_engine("chain-group", true).await).await;
    row(
        "chain_1000",
        "SQLite, group commit",
        1000,
        &timed(group),
        &raw,
    );
    let single = chain_durable(sqlite_engine("chain-single", false).await).await;
    row(
        "chain_1000",
        "SQLite, no group commit",
        1000,
        &timed(single),
        &raw,
    );

    let steps = RUNS * 10;
    let durable = |name: &'static str, group_commit: bool| async move {
        Runner::Durable(sqlite_engine(name, group_commit).await)
    };
    let raw = raw_sqlx("raw-seq", 1, steps).await;
    row(
        "seq_100x10",
        "hand-written sqlx (baseline)",
        steps,
        &raw,
        &raw,
    );
    let m = ten_sequential(Runner::InMemory(Engine::in_memory())).await;
    row("seq_100x10", "in memory", steps, &m, &raw);
    let m = ten_sequential(durable("seq-group", true).await).await;
    row("seq_100x10", "SQLite, group commit", steps, &m, &raw);
    let m = ten_sequential(durable("seq-single", false).await).await;
    row("seq_100x10", "SQLite, no group commit", steps, &m, &raw);

    let raw = raw_sqlx("raw-runs", RUNS, 10).await;
    row(
        "runs_100x10",
        "hand-written sqlx (baseline)",
        steps,
        &raw,
        &raw,
    );
    let m = ten_concurrent(Runner::InMemory(Engine::in_memory())).await;
    row("runs_100x10", "in memory", steps, &m, &raw);
    let m = ten_concurrent(durable("runs-group", true).await).await;
    row("runs_100x10", "SQLite, group commit", steps, &m, &raw);
    let m = ten_concurrent(durable("runs-single", false).await).await;
    row("runs_100x10", "SQLite, no group commit", steps, &m, &raw);
}
