//! Durable throughput on SQLite, beside the in-memory engine and a hand-written sqlx program
//! doing the same commits, in the same process. Prints a table; no timing assertions.
//!
//! `cargo bench -p workflow-core --bench durable`
//!
//! Workloads:
//! - `chain_1000`: one run of a 1,000-step chain (each step's output is committed before the
//!   next step starts, so this is the sequential commit rate of a single run);
//! - `runs_100x10`: 100 concurrent runs of a 10-step chain (group commit batches the commits
//!   of many runs into one transaction).
//!
//! Engines: in memory; SQLite with group commit (default); SQLite without (one transaction
//! per write). Baseline: a hand-written sqlx loop that inserts one row per step and commits
//! each (WAL, `synchronous = FULL`), sequentially for the chain and from 100 tasks for the
//! concurrent workload. Env `DURABLE_BENCH_DIR` picks the directory for the database files
//! (default: the system temp dir).

#[path = "generated/chain_1000.rs"]
mod chain_1000;

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use workflow_core::prelude::*;
use workflow_core::store::{SqliteOptions, SqliteStore};

use chain_1000::Chain1000;

/// A 10-step chain.
struct Ten;

#[workflow]
impl Ten {
    #[step]
    async fn s0(&self, x: u64) -> u64 {
        x + 1
    }
    #[step(after = s0)]
    async fn s1(&self, x: u64) -> u64 {
        x + 1
    }
    #[step(after = s1)]
    async fn s2(&self, x: u64) -> u64 {
        x + 1
    }
    #[step(after = s2)]
    async fn s3(&self, x: u64) -> u64 {
        x + 1
    }
    #[step(after = s3)]
    async fn s4(&self, x: u64) -> u64 {
        x + 1
    }
    #[step(after = s4)]
    async fn s5(&self, x: u64) -> u64 {
        x + 1
    }
    #[step(after = s5)]
    async fn s6(&self, x: u64) -> u64 {
        x + 1
    }
    #[step(after = s6)]
    async fn s7(&self, x: u64) -> u64 {
        x + 1
    }
    #[step(after = s7)]
    async fn s8(&self, x: u64) -> u64 {
        x + 1
    }
    #[step(after = s8)]
    async fn s9(&self, x: u64) -> u64 {
        x + 1
    }
}

const RUNS: u64 = 100;

fn db_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::var_os("DURABLE_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let path = dir.join(format!("workflow-bench-{name}-{}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
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
        .run(Chain1000, 0)
        .await
        .expect("chain runs");
    assert_eq!(out, 1000);
    started.elapsed()
}

async fn chain_durable(engine: DurableEngine) -> Duration {
    let started = Instant::now();
    let out = engine.run(Chain1000, 0).await.expect("chain runs");
    assert_eq!(out, 1000);
    started.elapsed()
}

async fn runs_in_memory() -> Duration {
    let engine = Engine::in_memory();
    let started = Instant::now();
    let handles: Vec<_> = (0..RUNS)
        .map(|i| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.run(Ten, i).await })
        })
        .collect();
    for handle in handles {
        handle.await.expect("join").expect("run");
    }
    started.elapsed()
}

async fn runs_durable(engine: DurableEngine) -> Duration {
    let started = Instant::now();
    let handles: Vec<_> = (0..RUNS)
        .map(|i| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.run(Ten, i).await })
        })
        .collect();
    for handle in handles {
        handle.await.expect("join").expect("run");
    }
    started.elapsed()
}

/// Hand-written: one `INSERT` + commit per step, `tasks` tasks of `steps` steps each.
async fn raw_sqlx(name: &str, tasks: u64, steps: u64) -> Duration {
    let options = SqliteConnectOptions::from_str("sqlite:")
        .expect("options")
        .filename(db_path(name))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("connect");
    sqlx::query("CREATE TABLE journal (run INTEGER, seq INTEGER, payload BLOB)")
        .execute(&pool)
        .await
        .expect("create");
    let pool = Arc::new(pool);
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|run| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut value = run;
                for seq in 0..steps {
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
    started.elapsed()
}

fn row(workload: &str, engine: &str, steps: u64, elapsed: Duration, reference: Duration) {
    let rate = steps as f64 / elapsed.as_secs_f64();
    let per_step = elapsed.as_secs_f64() * 1e6 / steps as f64;
    let ratio = elapsed.as_secs_f64() / reference.as_secs_f64();
    println!("| {workload:<12} | {engine:<28} | {:>9.1} | {rate:>12.0} | {per_step:>10.2} | {ratio:>8.2}x |", elapsed.as_secs_f64() * 1e3);
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
        println!("| workload     | engine                       |     ms    |    steps/s   |  µs/step   | vs raw sqlx |");
        println!("|--------------|------------------------------|-----------|--------------|------------|-------------|");
        let raw = raw_sqlx("raw-chain", 1, 1000).await;
        row("chain_1000", "hand-written sqlx (baseline)", 1000, raw, raw);
        row("chain_1000", "in memory", 1000, chain_in_memory().await, raw);
        row("chain_1000", "SQLite, group commit", 1000, chain_durable(sqlite_engine("chain-group", true).await).await, raw);
        row("chain_1000", "SQLite, no group commit", 1000, chain_durable(sqlite_engine("chain-single", false).await).await, raw);
        let steps = RUNS * 10;
        let raw = raw_sqlx("raw-runs", RUNS, 10).await;
        row("runs_100x10", "hand-written sqlx (baseline)", steps, raw, raw);
        row("runs_100x10", "in memory", steps, runs_in_memory().await, raw);
        row("runs_100x10", "SQLite, group commit", steps, runs_durable(sqlite_engine("runs-group", true).await).await, raw);
        row("runs_100x10", "SQLite, no group commit", steps, runs_durable(sqlite_engine("runs-single", false).await).await, raw);
    });
}
