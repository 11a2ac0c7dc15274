//! Orchestration overhead of the engine against hand-written tokio code doing the same work.
//!
//! Workloads (each engine run is measured next to its baselines, in the same process):
//!
//! - `chain_1000` (current_thread runtime): a 1,000-step linear workflow of no-op steps
//!   (`x + 1`), against a loop awaiting 1,000 `async fn` calls and against 1,000 boxed
//!   futures (`Pin<Box<dyn Future + Send>>`) awaited in sequence.
//! - `fanout_1000` (current_thread and multi_thread runtimes): a start step producing 1,000
//!   items, a `for_each` step over them (no concurrency limit) and a join summing the results,
//!   against `tokio::spawn` + `join_all` of the 1,000 `JoinHandle`s and against
//!   `futures::future::join_all` of the 1,000 futures (no spawn). Baselines also build the item
//!   `Vec` and sum the results.
//! - `run_1` (current_thread): a one-step workflow against one direct call, to show the fixed
//!   per-run cost that the 1,000-unit workloads amortise.
//!
//! No tracing subscriber is installed, so the engine's spans are disabled (the cheapest case).
//!
//! `cargo bench -p workflow-core --bench overhead` runs criterion on every workload, then a
//! quick manual timing (median of interleaved batches) and prints the summary table
//! `workload | engine µs/unit | baseline µs/unit | overhead | ratio`.
//! Environment knobs:
//! - `OVERHEAD_SUMMARY_ONLY=1`: skip criterion, print only the summary table;
//! - `OVERHEAD_PROFILE=chain|fanout|fanout_mt` (+ `OVERHEAD_RUNS=N`, default 200): run only that
//!   engine workload N times and exit (for `valgrind --tool=callgrind` / `perf`).
//!
//! The 1,000-step chain lives in `generated/chain_1000.rs` (a subdirectory, so cargo does not
//! take it for a bench target of its own). It is generated, and committed; regenerate with
//! `python3 scripts/gen-chain.py 1000 > workflow-core/benches/generated/chain_1000.rs`.

#[path = "generated/chain_1000.rs"]
mod chain_1000;

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use tokio::runtime::{Builder, Runtime};
use workflow_core::prelude::*;

use chain_1000::Chain1000;

/// Units (steps or branches) per workload.
const N: u64 = 1000;

// ---------------------------------------------------------------------------------------------
// Workflows
// ---------------------------------------------------------------------------------------------

/// `items` -> `work` (for_each over 1,000 items) -> `join`.
struct FanOut;

#[workflow]
impl FanOut {
    #[step]
    async fn items(&self, n: u64) -> Vec<u64> {
        (0..n).collect()
    }
    #[step(after = items, for_each)]
    async fn work(&self, x: u64) -> u64 {
        x + 1
    }
    #[step(after = work)]
    async fn join(&self, results: Vec<u64>) -> u64 {
        results.iter().sum()
    }
}

/// One step: the fixed cost of a run.
struct Single;

#[workflow]
impl Single {
    #[step]
    async fn only(&self, x: u64) -> u64 {
        x + 1
    }
}

/// Expected result of the fan-out workloads: sum of `x + 1` for `x` in `0..N`.
const FANOUT_SUM: u64 = N * (N + 1) / 2;

// ---------------------------------------------------------------------------------------------
// Engine runs and hand-written baselines
// ---------------------------------------------------------------------------------------------

async fn engine_chain() -> u64 {
    let out = Engine::in_memory()
        .run(Chain1000, black_box(0))
        .await
        .unwrap();
    debug_assert_eq!(out, N);
    out
}

async fn step(x: u64) -> u64 {
    black_box(x) + 1
}

/// A hand-written loop awaiting 1,000 `async fn` calls.
async fn baseline_chain_loop() -> u64 {
    let mut x = black_box(0);
    for _ in 0..N {
        x = step(x).await;
    }
    x
}

type BoxFuture = Pin<Box<dyn Future<Output = u64> + Send>>;

/// 1,000 boxed futures awaited in sequence (the engine boxes every step future, too).
async fn baseline_chain_boxed() -> u64 {
    let mut x = black_box(0);
    for _ in 0..N {
        let future: BoxFuture = Box::pin(step(x));
        x = black_box(future).await;
    }
    x
}

async fn engine_fanout() -> u64 {
    let out = Engine::in_memory().run(FanOut, black_box(N)).await.unwrap();
    debug_assert_eq!(out, FANOUT_SUM);
    out
}

/// `tokio::spawn` per item, then `join_all` over the handles.
async fn baseline_fanout_spawn() -> u64 {
    let items: Vec<u64> = (0..black_box(N)).collect();
    let handles: Vec<_> = items.into_iter().map(|x| tokio::spawn(step(x))).collect();
    let results: Vec<u64> = futures::future::join_all(handles)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    results.iter().sum()
}

/// `futures::future::join_all` of the item futures, polled on the caller's task.
async fn baseline_fanout_join_all() -> u64 {
    let items: Vec<u64> = (0..black_box(N)).collect();
    let results = futures::future::join_all(items.into_iter().map(step)).await;
    results.iter().sum()
}

async fn engine_single() -> u64 {
    Engine::in_memory().run(Single, black_box(0)).await.unwrap()
}

async fn baseline_single() -> u64 {
    step(black_box(0)).await
}

fn current_thread() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

fn multi_thread() -> Runtime {
    Builder::new_multi_thread().enable_all().build().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Criterion
// ---------------------------------------------------------------------------------------------

macro_rules! bench_fns {
    ($group:expr, $rt:expr, $units:expr, $($name:literal => $f:path),+ $(,)?) => {
        $(
            $group.bench_function(BenchmarkId::from_parameter($name), |b| {
                b.to_async($rt).iter(|| async { black_box($f().await) })
            });
        )+
    };
}

fn criterion_benches(c: &mut Criterion, ct: &Runtime, mt: &Runtime) {
    let mut group = c.benchmark_group("chain_1000/current_thread");
    group.throughput(Throughput::Elements(N));
    bench_fns!(group, ct, N,
        "engine" => engine_chain,
        "async_fn_loop" => baseline_chain_loop,
        "boxed_futures" => baseline_chain_boxed,
    );
    group.finish();

    for (label, rt) in [("current_thread", ct), ("multi_thread", mt)] {
        let mut group = c.benchmark_group(format!("fanout_1000/{label}"));
        group.throughput(Throughput::Elements(N));
        bench_fns!(group, rt, N,
            "engine" => engine_fanout,
            "spawn_join_all" => baseline_fanout_spawn,
            "join_all" => baseline_fanout_join_all,
        );
        group.finish();
    }

    let mut group = c.benchmark_group("run_1/current_thread");
    bench_fns!(group, ct, 1,
        "engine" => engine_single,
        "direct_call" => baseline_single,
    );
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// Summary: interleaved manual timing, median of batches
// ---------------------------------------------------------------------------------------------

type Workload = fn() -> Pin<Box<dyn Future<Output = u64>>>;

macro_rules! workload {
    ($f:path) => {
        (|| Box::pin($f()) as Pin<Box<dyn Future<Output = u64>>>) as Workload
    };
}

const BATCHES: usize = 15;
const BATCH_TARGET: Duration = Duration::from_millis(20);

/// Calls per batch so that one batch of `f` takes about `BATCH_TARGET`.
fn calibrate(rt: &Runtime, f: Workload) -> u32 {
    let mut calls = 1u32;
    loop {
        let start = Instant::now();
        rt.block_on(async {
            for _ in 0..calls {
                black_box(f().await);
            }
        });
        let elapsed = start.elapsed();
        if elapsed >= BATCH_TARGET / 4 || calls >= 1 << 20 {
            let per_call = elapsed.as_secs_f64() / f64::from(calls);
            return ((BATCH_TARGET.as_secs_f64() / per_call) as u32).max(1);
        }
        calls *= 2;
    }
}

/// Nanoseconds per call of one batch of `calls` calls of `f`.
fn batch(rt: &Runtime, f: Workload, calls: u32) -> f64 {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..calls {
            black_box(f().await);
        }
        start.elapsed().as_nanos() as f64 / f64::from(calls)
    })
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

/// Median ns per call of every workload in `fs`, batches interleaved across workloads so a noisy
/// neighbour hits all of them alike.
fn measure(rt: &Runtime, fs: &[Workload]) -> Vec<f64> {
    let calls: Vec<u32> = fs.iter().map(|&f| calibrate(rt, f)).collect();
    let mut samples = vec![Vec::with_capacity(BATCHES); fs.len()];
    for _ in 0..BATCHES {
        for (k, &f) in fs.iter().enumerate() {
            samples[k].push(batch(rt, f, calls[k]));
        }
    }
    samples.into_iter().map(median).collect()
}

struct Row {
    workload: String,
    unit: &'static str,
    units: u64,
    engine_ns: f64,
    baseline: &'static str,
    baseline_ns: f64,
}

fn summary(ct: &Runtime, mt: &Runtime) {
    let mut rows = Vec::new();

    let m = measure(
        ct,
        &[
            workload!(engine_chain),
            workload!(baseline_chain_loop),
            workload!(baseline_chain_boxed),
        ],
    );
    for (k, baseline) in [(1, "async fn loop"), (2, "boxed futures")] {
        rows.push(Row {
            workload: "chain_1000 current_thread".into(),
            unit: "step",
            units: N,
            engine_ns: m[0],
            baseline,
            baseline_ns: m[k],
        });
    }
    for (label, rt) in [("current_thread", ct), ("multi_thread", mt)] {
        let m = measure(
            rt,
            &[
                workload!(engine_fanout),
                workload!(baseline_fanout_spawn),
                workload!(baseline_fanout_join_all),
            ],
        );
        for (k, baseline) in [(1, "spawn + join_all"), (2, "join_all (no spawn)")] {
            rows.push(Row {
                workload: format!("fanout_1000 {label}"),
                unit: "branch",
                units: N,
                engine_ns: m[0],
                baseline,
                baseline_ns: m[k],
            });
        }
    }
    let m = measure(ct, &[workload!(engine_single), workload!(baseline_single)]);
    rows.push(Row {
        workload: "run_1 current_thread".into(),
        unit: "run",
        units: 1,
        engine_ns: m[0],
        baseline: "direct call",
        baseline_ns: m[1],
    });

    println!();
    println!(
        "Summary (median of {BATCHES} interleaved batches of ~{} ms each; µs per unit)",
        BATCH_TARGET.as_millis()
    );
    println!(
        "| {:<27} | {:<6} | {:>12} | {:<20} | {:>14} | {:>15} | {:>7} |",
        "workload", "unit", "engine µs", "baseline", "baseline µs", "overhead µs", "ratio"
    );
    println!(
        "|{:-<29}|{:-<8}|{:->14}|{:-<22}|{:->16}|{:->17}|{:->9}|",
        "", "", "", "", "", "", ""
    );
    for r in &rows {
        let units = r.units as f64;
        let (engine, base) = (r.engine_ns / units / 1000.0, r.baseline_ns / units / 1000.0);
        println!(
            "| {:<27} | {:<6} | {:>12.4} | {:<20} | {:>14.4} | {:>15.4} | {:>6.1}x |",
            r.workload,
            r.unit,
            engine,
            r.baseline,
            base,
            engine - base,
            engine / base
        );
    }
    println!("(overhead = engine - baseline per unit; targets: < 0.15 µs per chain step, < 0.5 µs per fan-out branch)");
}

// ---------------------------------------------------------------------------------------------

fn profile(kind: &str) {
    let runs: u32 = std::env::var("OVERHEAD_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let (rt, f): (Runtime, Workload) = match kind {
        "chain" => (current_thread(), workload!(engine_chain)),
        "fanout" => (current_thread(), workload!(engine_fanout)),
        "fanout_mt" => (multi_thread(), workload!(engine_fanout)),
        "chain_boxed" => (current_thread(), workload!(baseline_chain_boxed)),
        "fanout_join_all" => (current_thread(), workload!(baseline_fanout_join_all)),
        other => panic!("OVERHEAD_PROFILE: unknown workload `{other}`"),
    };
    let mut total = 0u64;
    rt.block_on(async {
        for _ in 0..runs {
            total = total.wrapping_add(f().await);
        }
    });
    println!("{kind}: {runs} runs, checksum {total}");
}

fn main() {
    if let Ok(kind) = std::env::var("OVERHEAD_PROFILE") {
        profile(&kind);
        return;
    }
    let (ct, mt) = (current_thread(), multi_thread());
    // Correctness first: every workload computes the same thing as its baselines.
    assert_eq!(ct.block_on(engine_chain()), N);
    assert_eq!(ct.block_on(baseline_chain_loop()), N);
    assert_eq!(ct.block_on(baseline_chain_boxed()), N);
    for rt in [&ct, &mt] {
        assert_eq!(rt.block_on(engine_fanout()), FANOUT_SUM);
        assert_eq!(rt.block_on(baseline_fanout_spawn()), FANOUT_SUM);
        assert_eq!(rt.block_on(baseline_fanout_join_all()), FANOUT_SUM);
    }
    assert_eq!(ct.block_on(engine_single()), 1);

    let args: Vec<String> = std::env::args().collect();
    // `cargo test --benches` runs this binary with `--test`: criterion runs each bench once.
    let test_mode = args.iter().any(|a| a == "--test" || a == "--list");
    if std::env::var_os("OVERHEAD_SUMMARY_ONLY").is_none() {
        let mut c = Criterion::default()
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .sample_size(20)
            .without_plots()
            .configure_from_args();
        criterion_benches(&mut c, &ct, &mt);
        c.final_summary();
    }
    if !test_mode {
        summary(&ct, &mt);
    }
}
