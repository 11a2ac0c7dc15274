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
//! - `fanout_8` (current_thread and multi_thread runtimes): a static fan-out, a start step, 8
//!   parallel steps after it and an all-join `after = [a, b, c, d, e, f, g, h]` summing them,
//!   against the start call followed by `tokio::join!` of 8 `async fn` calls and against the
//!   start call followed by `tokio::spawn` of the 8 calls + `join_all` of the handles.
//! - `run_10` (current_thread): a 10-step linear workflow run 10,000 times in a row on one
//!   engine (per-run overhead: run setup, 10 steps, the output), against 10 awaited `async fn`
//!   calls, 10,000 times.
//! - `run_1` (current_thread): a one-step workflow against one direct call, to show the fixed
//!   per-run cost that the 1,000-unit workloads amortise.
//!
//! The binary installs a counting global allocator (the system allocator plus a thread-local
//! counter, about 1 ns per call) and prints the allocations per run of each current_thread
//! workload after the summary.
//!
//! No tracing subscriber is installed, so the engine's spans are disabled (the cheapest case).
//!
//! `cargo bench -p workflow-core --bench overhead` runs criterion on every workload, then a
//! quick manual timing (median of interleaved batches) and prints the summary table
//! `workload | engine µs/unit | baseline µs/unit | overhead | ratio`.
//! Environment knobs:
//! - `OVERHEAD_SUMMARY_ONLY=1`: skip criterion, print only the summary table;
//! - `OVERHEAD_PROFILE=chain|fanout|fanout_mt|fanout8|ten` (+ `OVERHEAD_RUNS=N`, default 200):
//!   run only that engine workload N times and exit (for `valgrind --tool=callgrind` / `perf`).
//!
//! The 1,000-step chain lives in `generated/chain_1000.rs` (a subdirectory, so cargo does not
//! take it for a bench target of its own). It is generated, and committed; regenerate with
//! `python3 scripts/gen-chain.py 1000 > workflow-core/benches/generated/chain_1000.rs`.

#[path = "generated/chain_1000.rs"]
mod chain_1000;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
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

/// Runs per `run_10` workload.
const RUNS_10: u64 = 10_000;

// ---------------------------------------------------------------------------------------------
// Counting allocator: allocations made on the current thread
// ---------------------------------------------------------------------------------------------

struct Counting;

thread_local! {
    /// (allocations, bytes) made by this thread.
    static ALLOCATED: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

fn count(bytes: usize) {
    let _ = ALLOCATED.try_with(|c| {
        let (n, b) = c.get();
        c.set((n + 1, b + bytes as u64));
    });
}

// SAFETY: every call is forwarded to `System` unchanged; the counter never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded as is.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocated() -> (u64, u64) {
    ALLOCATED.with(Cell::get)
}

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

/// A static fan-out: `begin`, 8 parallel steps, an all-join.
struct FanOut8;

#[workflow]
impl FanOut8 {
    #[step]
    async fn begin(&self, x: u64) -> u64 {
        x
    }
    #[step(after = begin)]
    async fn a(&self, x: u64) -> u64 {
        x + 1
    }
    #[step(after = begin)]
    async fn b(&self, x: u64) -> u64 {
        x + 2
    }
    #[step(after = begin)]
    async fn c(&self, x: u64) -> u64 {
        x + 3
    }
    #[step(after = begin)]
    async fn d(&self, x: u64) -> u64 {
        x + 4
    }
    #[step(after = begin)]
    async fn e(&self, x: u64) -> u64 {
        x + 5
    }
    #[step(after = begin)]
    async fn f(&self, x: u64) -> u64 {
        x + 6
    }
    #[step(after = begin)]
    async fn g(&self, x: u64) -> u64 {
        x + 7
    }
    #[step(after = begin)]
    async fn h(&self, x: u64) -> u64 {
        x + 8
    }
    #[allow(clippy::too_many_arguments)]
    #[step(after = [a, b, c, d, e, f, g, h])]
    async fn join(&self, a: u64, b: u64, c: u64, d: u64, e: u64, f: u64, g: u64, h: u64) -> u64 {
        a + b + c + d + e + f + g + h
    }
}

/// Expected result of the `fanout_8` workloads on input 0.
const FANOUT8_SUM: u64 = 36;

/// A 10-step chain of no-op steps.
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

/// Expected result of the `run_10` workloads: sum of `i + 10` for `i` in `0..RUNS_10`.
const RUN10_SUM: u64 = RUNS_10 * (RUNS_10 - 1) / 2 + 10 * RUNS_10;

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
        .run(&Chain1000, black_box(0))
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
    let out = Engine::in_memory()
        .run(&FanOut, black_box(N))
        .await
        .unwrap();
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

async fn engine_fanout8() -> u64 {
    let out = Engine::in_memory()
        .run(&FanOut8, black_box(0))
        .await
        .unwrap();
    debug_assert_eq!(out, FANOUT8_SUM);
    out
}

async fn add(x: u64, k: u64) -> u64 {
    black_box(x) + k
}

/// The start call, then `tokio::join!` of the 8 branch calls, then the sum.
async fn baseline_fanout8_join() -> u64 {
    let x = step(black_box(0)).await - 1;
    let (a, b, c, d, e, f, g, h) = tokio::join!(
        add(x, 1),
        add(x, 2),
        add(x, 3),
        add(x, 4),
        add(x, 5),
        add(x, 6),
        add(x, 7),
        add(x, 8)
    );
    a + b + c + d + e + f + g + h
}

/// The start call, then `tokio::spawn` of each branch call and `join_all` of the handles.
async fn baseline_fanout8_spawn() -> u64 {
    let x = step(black_box(0)).await - 1;
    let handles: Vec<_> = (1..=8).map(|k| tokio::spawn(add(x, k))).collect();
    futures::future::join_all(handles)
        .await
        .into_iter()
        .map(Result::unwrap)
        .sum()
}

/// One run of the 10-step workflow (criterion times single runs).
async fn engine_ten() -> u64 {
    Engine::in_memory().run(&Ten, black_box(0)).await.unwrap()
}

/// 10 awaited `async fn` calls: the hand-written 10-step chain.
async fn ten_fns(x: u64) -> u64 {
    let x = step(x).await;
    let x = step(x).await;
    let x = step(x).await;
    let x = step(x).await;
    let x = step(x).await;
    let x = step(x).await;
    let x = step(x).await;
    let x = step(x).await;
    let x = step(x).await;
    step(x).await
}

async fn baseline_ten() -> u64 {
    ten_fns(black_box(0)).await
}

/// The 10-step workflow run `RUNS_10` times in a row on one engine.
async fn engine_ten_10k() -> u64 {
    let engine = Engine::in_memory();
    let mut total = 0;
    for i in 0..RUNS_10 {
        total += engine.run(&Ten, black_box(i)).await.unwrap();
    }
    total
}

/// 10 awaited `async fn` calls, `RUNS_10` times.
async fn baseline_ten_10k() -> u64 {
    let mut total = 0;
    for i in 0..RUNS_10 {
        total += ten_fns(black_box(i)).await;
    }
    total
}

async fn engine_single() -> u64 {
    Engine::in_memory()
        .run(&Single, black_box(0))
        .await
        .unwrap()
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

    for (label, rt) in [("current_thread", ct), ("multi_thread", mt)] {
        let mut group = c.benchmark_group(format!("fanout_8/{label}"));
        group.throughput(Throughput::Elements(8));
        bench_fns!(group, rt, 8,
            "engine" => engine_fanout8,
            "tokio_join" => baseline_fanout8_join,
            "spawn_join_all" => baseline_fanout8_spawn,
        );
        group.finish();
    }

    let mut group = c.benchmark_group("run_10/current_thread");
    bench_fns!(group, ct, 1,
        "engine" => engine_ten,
        "ten_async_fns" => baseline_ten,
    );
    group.finish();

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

/// What one summary comparison measures: the engine and its baselines, one unit size.
struct Comparison {
    workload: String,
    unit: &'static str,
    units: u64,
    engine: Workload,
    baselines: Vec<(Workload, &'static str)>,
}

impl Comparison {
    /// Measures the engine beside its baselines (interleaved) and adds a row per baseline.
    fn measure_into(self, rt: &Runtime, rows: &mut Vec<Row>) {
        let mut workloads = vec![self.engine];
        workloads.extend(self.baselines.iter().map(|(f, _)| *f));
        let m = measure(rt, &workloads);
        for (k, (_, baseline)) in self.baselines.iter().enumerate() {
            rows.push(Row {
                workload: self.workload.clone(),
                unit: self.unit,
                units: self.units,
                engine_ns: m[0],
                baseline,
                baseline_ns: m[k + 1],
            });
        }
    }
}

fn summary(ct: &Runtime, mt: &Runtime) {
    let mut rows = Vec::new();
    Comparison {
        workload: "chain_1000 current_thread".into(),
        unit: "step",
        units: N,
        engine: workload!(engine_chain),
        baselines: vec![
            (workload!(baseline_chain_loop), "async fn loop"),
            (workload!(baseline_chain_boxed), "boxed futures"),
        ],
    }
    .measure_into(ct, &mut rows);
    for (label, rt) in [("current_thread", ct), ("multi_thread", mt)] {
        Comparison {
            workload: format!("fanout_1000 {label}"),
            unit: "branch",
            units: N,
            engine: workload!(engine_fanout),
            baselines: vec![
                (workload!(baseline_fanout_spawn), "spawn + join_all"),
                (workload!(baseline_fanout_join_all), "join_all (no spawn)"),
            ],
        }
        .measure_into(rt, &mut rows);
        Comparison {
            workload: format!("fanout_8 {label}"),
            unit: "run",
            units: 1,
            engine: workload!(engine_fanout8),
            baselines: vec![
                (workload!(baseline_fanout8_join), "tokio::join! of 8"),
                (workload!(baseline_fanout8_spawn), "8 spawns + join_all"),
            ],
        }
        .measure_into(rt, &mut rows);
    }
    Comparison {
        workload: "run_10 x10000 current_thread".into(),
        unit: "run",
        units: RUNS_10,
        engine: workload!(engine_ten_10k),
        baselines: vec![(workload!(baseline_ten_10k), "10 awaited async fns")],
    }
    .measure_into(ct, &mut rows);
    Comparison {
        workload: "run_1 current_thread".into(),
        unit: "run",
        units: 1,
        engine: workload!(engine_single),
        baselines: vec![(workload!(baseline_single), "direct call")],
    }
    .measure_into(ct, &mut rows);

    println!();
    println!(
        "Summary (median of {BATCHES} interleaved batches of ~{} ms each; µs per unit)",
        BATCH_TARGET.as_millis()
    );
    println!(
        "| {:<28} | {:<6} | {:>12} | {:<20} | {:>14} | {:>15} | {:>7} |",
        "workload", "unit", "engine µs", "baseline", "baseline µs", "overhead µs", "ratio"
    );
    println!(
        "|{:-<30}|{:-<8}|{:->14}|{:-<22}|{:->16}|{:->17}|{:->9}|",
        "", "", "", "", "", "", ""
    );
    for r in &rows {
        let units = r.units as f64;
        let (engine, base) = (r.engine_ns / units / 1000.0, r.baseline_ns / units / 1000.0);
        println!(
            "| {:<28} | {:<6} | {:>12.4} | {:<20} | {:>14.4} | {:>15.4} | {:>6.1}x |",
            r.workload,
            r.unit,
            engine,
            r.baseline,
            base,
            engine - base,
            engine / base
        );
    }
    println!("(overhead = engine - baseline per unit; targets: < 0.15 µs per chain step, < 0.5 µs per fan-out branch, < 3 µs per run_10 run)");
    allocations(ct);
}

/// Allocations (count and bytes) per call of each current_thread workload, from the counting
/// allocator: everything a current_thread runtime runs happens on this thread.
fn allocations(ct: &Runtime) {
    let rows: [(&str, Workload, u64); 10] = [
        ("chain_1000 engine", workload!(engine_chain), 1),
        (
            "chain_1000 boxed futures",
            workload!(baseline_chain_boxed),
            1,
        ),
        ("fanout_1000 engine", workload!(engine_fanout), 1),
        (
            "fanout_1000 join_all",
            workload!(baseline_fanout_join_all),
            1,
        ),
        ("fanout_8 engine", workload!(engine_fanout8), 1),
        ("fanout_8 tokio::join!", workload!(baseline_fanout8_join), 1),
        ("fanout_8 spawns", workload!(baseline_fanout8_spawn), 1),
        ("run_10 engine", workload!(engine_ten_10k), RUNS_10),
        ("run_10 async fns", workload!(baseline_ten_10k), RUNS_10),
        ("run_1 engine", workload!(engine_single), 1),
    ];
    println!();
    println!("Allocations per run (current_thread, counted on the runtime's thread)");
    println!(
        "| {:<26} | {:>11} | {:>11} |",
        "workload", "allocs/run", "bytes/run"
    );
    println!("|{:-<28}|{:->13}|{:->13}|", "", "", "");
    for (name, f, runs) in rows {
        ct.block_on(f()); // warm: lazily allocated runtime state is not counted
        let future = f(); // the workload's own box is not counted either
        let (n0, b0) = allocated();
        black_box(ct.block_on(future));
        let (n1, b1) = allocated();
        println!(
            "| {:<26} | {:>11.1} | {:>11.1} |",
            name,
            (n1 - n0) as f64 / runs as f64,
            (b1 - b0) as f64 / runs as f64
        );
    }
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
        "fanout8" => (current_thread(), workload!(engine_fanout8)),
        "ten" => (current_thread(), workload!(engine_ten)),
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
    for rt in [&ct, &mt] {
        assert_eq!(rt.block_on(engine_fanout8()), FANOUT8_SUM);
        assert_eq!(rt.block_on(baseline_fanout8_join()), FANOUT8_SUM);
        assert_eq!(rt.block_on(baseline_fanout8_spawn()), FANOUT8_SUM);
    }
    assert_eq!(ct.block_on(engine_ten()), 10);
    assert_eq!(ct.block_on(baseline_ten()), 10);
    assert_eq!(ct.block_on(engine_ten_10k()), RUN10_SUM);
    assert_eq!(ct.block_on(baseline_ten_10k()), RUN10_SUM);
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
