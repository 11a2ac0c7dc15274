//! What a chain of plain steps run in memory costs under each set-up a user may run it with.
//!
//! The 100-step chain of `generated/chain_100.rs` (`x + 1` per step) against 100 boxed
//! futures of the same steps awaited in sequence, on a current_thread runtime, measured in
//! this order (a subscriber, once installed, stays visible to
//! `tracing::dispatcher::has_been_set` for the rest of the process):
//!
//! 1. `Engine::run`, no subscriber: the chain runs as one straight-line segment;
//! 2. `Engine::run_with`, which records the run's history: one segment too, the history kept
//!    at each chain edge;
//! 3. `run_with` with a cancellation token and a deadline: something outside the run can stop
//!    a step, so every step goes through the general loop (a boxed future each, the run's
//!    guard asked before each);
//! 4. `Engine::run` under a subscriber that records no span (as a `warn` level filter does for
//!    the engine's `info` spans): the engine asks for the chain's first `step` span, finds it
//!    off, and still runs the chain as one segment;
//! 5. `Engine::run` under a subscriber that records every span: each step runs alone, in
//!    place, inside its own `step` span, so what it logs names it.
//!
//! Each set-up's figure is the median of interleaved batches of the engine and the baseline,
//! printed beside the baseline as a ratio (never an assertion):
//! `cargo bench -p workflow-core --bench chain_setups`.

#[path = "generated/chain_100.rs"]
mod chain_100;

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use workflow_core::{CancellationToken, Engine, RunOptions};

const STEPS: u64 = 100;
const RUNS_PER_BATCH: u32 = 2_000;
const BATCHES: usize = 15;

/// A subscriber whose filter records every span (`records: true`) or none.
struct Filtered {
    records: bool,
    next: AtomicU64,
}

impl Subscriber for Filtered {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        if self.records {
            Interest::always()
        } else {
            Interest::never()
        }
    }
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        self.records
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

async fn step(x: u64) -> u64 {
    black_box(x) + 1
}

/// The chain's steps as boxed futures awaited in sequence.
async fn baseline() -> u64 {
    let mut x = black_box(0);
    for _ in 0..STEPS {
        let future: Pin<Box<dyn Future<Output = u64> + Send>> = Box::pin(step(x));
        x = future.await;
    }
    x
}

async fn run(engine: &Engine) -> u64 {
    engine
        .run(&chain_100::Chain100, black_box(0))
        .await
        .unwrap()
}

async fn run_with(engine: &Engine, options: RunOptions) -> u64 {
    let finished = engine
        .run_with(&chain_100::Chain100, black_box(0), options)
        .await;
    black_box(&finished.history);
    finished.result.unwrap()
}

/// Seconds for one batch of `RUNS_PER_BATCH` runs of `run`.
fn batch<F: Future<Output = u64>>(rt: &Runtime, run: impl Fn() -> F) -> f64 {
    let started = Instant::now();
    rt.block_on(async {
        for _ in 0..RUNS_PER_BATCH {
            assert_eq!(run().await, STEPS);
        }
    });
    started.elapsed().as_secs_f64()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

/// µs per step of the engine's `runs` and of the baseline, batches interleaved.
fn measure<F: Future<Output = u64>>(rt: &Runtime, runs: impl Fn() -> F) -> (f64, f64) {
    let (mut engine_s, mut baseline_s) = (Vec::new(), Vec::new());
    for _ in 0..BATCHES {
        engine_s.push(batch(rt, &runs));
        baseline_s.push(batch(rt, baseline));
    }
    let per_step = |s: f64| s * 1e6 / f64::from(RUNS_PER_BATCH) / STEPS as f64;
    (per_step(median(engine_s)), per_step(median(baseline_s)))
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time() // the deadline's timer
        .build()
        .unwrap();
    let on = Engine::in_memory();
    println!(
        "A 100-step chain of plain steps, in memory: µs per step (median of {BATCHES} batches)"
    );
    println!("| set-up                                       | engine µs | 100 boxed futures µs |  ratio |");
    println!("|----------------------------------------------|-----------|----------------------|--------|");
    let row = |label: &str, (engine, baseline): (f64, f64)| {
        println!(
            "| {label:<44} | {engine:>9.4} | {baseline:>20.4} | {:>5.2}x |",
            engine / baseline
        );
    };
    row("run, no subscriber", measure(&rt, || run(&on)));
    row(
        "run_with (history), no subscriber",
        measure(&rt, || run_with(&on, RunOptions::new())),
    );
    row(
        "run_with, token and deadline (general loop)",
        measure(&rt, || {
            let options = RunOptions::new()
                .cancel_token(CancellationToken::new())
                .deadline(Duration::from_secs(60));
            run_with(&on, options)
        }),
    );
    for (records, label) in [
        (false, "run, a subscriber recording no span"),
        (true, "run, a subscriber recording every span"),
    ] {
        let subscriber = Filtered {
            records,
            next: AtomicU64::new(0),
        };
        let _installed = tracing::subscriber::set_default(subscriber);
        row(label, measure(&rt, || run(&on)));
    }
}
