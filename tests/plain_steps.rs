//! Plain steps (no items, signal, child workflow, compensation or declared timeout) on the
//! straight-line path, which awaits them in place: each chain of them as straight-line code in
//! one future without a box (`__run_segment`), cut into segments of 64 steps in a larger
//! workflow. Both give the same results and the same history as the general path (a run that
//! can be cancelled never takes the straight-line path), and a step failing or panicking inside
//! a chain is that step's failure, retried from that step; so is a panic in a user `Clone`
//! copying a step's kept input, on both paths.
//!
//! These tests run with the `otel` feature compiled in (this workspace builds the OTLP
//! exporter): the straight-line path keeps spans and metrics, so it runs here too, and
//! `a_chain_of_plain_steps_allocates_nothing_per_step` checks that it does.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use workflow_core::prelude::*;

#[path = "../workflow-core/benches/generated/chain_100.rs"]
mod chain_100;

/// The system allocator, counting the allocations of each thread.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call goes to the system allocator unchanged; counting touches a
// thread-local `Cell` with a const initializer, which neither allocates nor has a destructor.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: CountingAllocator = CountingAllocator;

/// The allocations this thread made while `run` ran to its end.
async fn allocations_of<T>(run: impl std::future::Future<Output = T>) -> (T, u64) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = run.await;
    (out, ALLOCATIONS.with(Cell::get) - before)
}

/// Three plain steps, one of which takes the step context.
struct Small;

#[workflow]
impl Small {
    #[step]
    async fn double(&self, x: u64) -> u64 {
        x * 2
    }
    #[step(after = double)]
    async fn named(&self, ctx: &StepContext, x: u64) -> String {
        format!("{}:{x}:{}", ctx.step(), ctx.attempt())
    }
    #[step(after = named)]
    async fn shout(&self, s: String) -> Result<String, StepError> {
        if s.is_empty() {
            return Err(StepError::permanent(StepError::msg("empty")));
        }
        Ok(s.to_uppercase())
    }
}

#[tokio::test]
async fn a_small_workflow_runs_its_plain_steps_in_place() {
    let out = Engine::in_memory().run(&Small, 21).await.unwrap();
    assert_eq!(out, "NAMED:42:1");
}

#[tokio::test]
async fn a_chain_of_more_than_64_plain_steps_runs_across_its_segments() {
    let out = Engine::in_memory()
        .run(&chain_100::Chain100, 0)
        .await
        .unwrap();
    assert_eq!(out, 100);
}

/// Options that keep a run off the straight-line path: something outside the run could cancel
/// a step, so each step's future goes through the general loop.
fn general_path() -> RunOptions {
    RunOptions::new().cancel_token(CancellationToken::new())
}

#[tokio::test]
async fn the_general_path_gives_the_same_results() {
    let engine = Engine::in_memory();
    let done = engine.run_with(&Small, 21, general_path()).await;
    assert_eq!(done.result.unwrap(), "NAMED:42:1");
    let done = engine
        .run_with(&chain_100::Chain100, 0, general_path())
        .await;
    assert_eq!(done.result.unwrap(), 100);
}

#[tokio::test]
async fn a_chain_keeps_the_same_history_on_the_straight_line_path() {
    let engine = Engine::in_memory();
    let straight = engine
        .run_with(&chain_100::Chain100, 0, RunOptions::new())
        .await;
    let general = engine
        .run_with(&chain_100::Chain100, 0, general_path())
        .await;
    assert_eq!(straight.result.unwrap(), 100);
    assert_eq!(general.result.unwrap(), 100);
    let names: Vec<String> = (0..100).map(|n| format!("s{n}")).collect();
    assert_eq!(straight.history.path, names, "every step, in order");
    assert_eq!(straight.history.path, general.history.path);
    let mut last_finish = std::time::Duration::ZERO;
    for (record, control) in straight.history.steps.iter().zip(&general.history.steps) {
        assert_eq!(record.outcome, StepOutcome::Completed, "{}", record.step);
        assert_eq!(
            (record.attempts, record.completions),
            (control.attempts, control.completions),
            "{}",
            record.step
        );
        assert_eq!((record.attempts, record.completions), (1, 1));
        let started = record.started_at.expect("a start time");
        let finished = record.finished_at.expect("a finish time");
        assert!(
            last_finish <= started && started <= finished,
            "{} started at {started:?} and finished at {finished:?}, the step before it finished at {last_finish:?}",
            record.step
        );
        last_finish = finished;
    }
}

/// A chain whose middle step fails (or panics) at its first attempt.
struct Flaky {
    starts: Arc<AtomicU32>,
    middles: Arc<AtomicU32>,
    panics: bool,
}

#[workflow]
impl Flaky {
    #[step]
    async fn begin(&self, x: u32) -> u32 {
        self.starts.fetch_add(1, Ordering::SeqCst);
        x + 1
    }
    #[step(after = begin, retry = 2)]
    async fn middle(&self, ctx: &StepContext, x: u32) -> Result<u32, StepError> {
        let attempt = self.middles.fetch_add(1, Ordering::SeqCst) + 1;
        assert_eq!(ctx.attempt(), attempt, "the context's attempt");
        if attempt == 1 {
            if self.panics {
                panic!("middle's first attempt");
            }
            return Err(StepError::msg("middle's first attempt"));
        }
        Ok(x * 10 + attempt)
    }
    #[step(after = middle)]
    async fn end(&self, x: u32) -> u32 {
        x + 1
    }
}

fn flaky(panics: bool) -> Flaky {
    Flaky {
        starts: Arc::default(),
        middles: Arc::default(),
        panics,
    }
}

#[tokio::test]
async fn a_step_failing_inside_a_chain_is_retried_from_that_step() {
    let workflow = flaky(false);
    let out = Engine::in_memory().run(&workflow, 1).await.unwrap();
    assert_eq!(out, 23, "(1 + 1) * 10 + attempt 2, then + 1");
    assert_eq!(workflow.starts.load(Ordering::SeqCst), 1, "begin ran once");
    assert_eq!(workflow.middles.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_panic_inside_a_chain_is_the_failure_of_the_step_that_panicked() {
    // Attributed to `begin` (no retry), the panic would fail the run; `middle` retries it.
    let workflow = flaky(true);
    let out = Engine::in_memory().run(&workflow, 1).await.unwrap();
    assert_eq!(out, 23);
    assert_eq!(workflow.starts.load(Ordering::SeqCst), 1, "begin ran once");
    assert_eq!(workflow.middles.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_chain_of_plain_steps_allocates_nothing_per_step() {
    // On the test's own thread (a current-thread runtime): the count is this run's alone.
    let engine = Engine::in_memory();
    let warm = engine.run(&chain_100::Chain100, 0).await; // lazily built tables
    assert_eq!(warm.unwrap(), 100);
    let (out, straight) = allocations_of(engine.run(&chain_100::Chain100, 0)).await;
    assert_eq!(out.unwrap(), 100);
    // A run that records its history stays on it: its record has a few allocations of its
    // own, none per step.
    let (done, recorded) =
        allocations_of(engine.run_with(&chain_100::Chain100, 0, RunOptions::new())).await;
    assert_eq!(done.result.unwrap(), 100);
    // The general path (a cancellable run) boxes each step's future: the control that the
    // count sees per-step allocations.
    let (done, general) =
        allocations_of(engine.run_with(&chain_100::Chain100, 0, general_path())).await;
    assert_eq!(done.result.unwrap(), 100);
    assert!(
        general >= 100,
        "the general path made {general} allocations"
    );
    assert!(
        straight < 50,
        "100 chained steps made {straight} allocations in one run (general path: {general})"
    );
    assert!(
        recorded < 50,
        "100 chained steps with their history made {recorded} allocations in one run (general path: {general})"
    );
}

/// A chain whose first step cancels its own run; the steps after it count their runs.
struct CancelsItself {
    token: CancellationToken,
    ran: Arc<AtomicU32>,
}

#[workflow]
impl CancelsItself {
    #[step]
    async fn first(&self, x: u32) -> u32 {
        self.token.cancel();
        x
    }
    #[step(after = first)]
    async fn second(&self, x: u32) -> u32 {
        self.ran.fetch_add(1, Ordering::SeqCst);
        x
    }
    #[step(after = second)]
    async fn third(&self, x: u32) -> u32 {
        self.ran.fetch_add(1, Ordering::SeqCst);
        x
    }
}

/// The guard is polled only once its waits woke: a cancellation from inside a step wakes it,
/// and the run stops before the next step is polled.
#[tokio::test]
async fn a_chain_that_cancels_itself_stops_before_its_next_step() {
    let token = CancellationToken::new();
    let workflow = CancelsItself {
        token: token.clone(),
        ran: Arc::default(),
    };
    let options = RunOptions::new().cancel_token(token);
    let done = Engine::in_memory().run_with(&workflow, 1, options).await;
    let error = done.result.unwrap_err();
    assert!(matches!(error, WorkflowError::Cancelled { .. }), "{error}");
    assert_eq!(
        workflow.ran.load(Ordering::SeqCst),
        0,
        "no step after the cancelling one ran"
    );
    assert_eq!(done.history.path, ["first"]);
    let second = done.history.step("second").unwrap();
    assert_eq!(second.outcome, StepOutcome::Cancelled);
    assert_eq!(
        done.history.step("third").unwrap().outcome,
        StepOutcome::Skipped
    );
}

/// A value whose first copy panics (a user `Clone` with a bug).
struct Fragile {
    value: u32,
    copies: Arc<AtomicU32>,
}

impl Clone for Fragile {
    fn clone(&self) -> Self {
        if self.copies.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("the first copy breaks");
        }
        Fragile {
            value: self.value,
            copies: self.copies.clone(),
        }
    }
}

/// A chain whose second step keeps its input for a retry: each attempt gets a copy.
struct Copies;

#[workflow]
impl Copies {
    #[step]
    async fn hand(&self, x: Fragile) -> Fragile {
        x
    }
    #[step(after = hand, retry = 1)]
    async fn keep(&self, x: Fragile) -> u32 {
        x.value
    }
}

#[tokio::test]
async fn a_panic_copying_a_kept_input_is_that_steps_failure_on_both_paths() {
    let fragile = || Fragile {
        value: 42,
        copies: Arc::default(),
    };
    let engine = Engine::in_memory();
    // Straight-line path: the copy is made inside the chain's future.
    assert_eq!(engine.run(&Copies, fragile()).await.unwrap(), 42);
    // General path: the copy is made before the attempt's future.
    let done = engine.run_with(&Copies, fragile(), general_path()).await;
    assert_eq!(done.result.unwrap(), 42);
    let attempts: Vec<_> = done
        .history
        .steps
        .iter()
        .filter(|s| s.step == "keep")
        .map(|s| s.attempts)
        .collect();
    assert_eq!(attempts, [2], "the panicking copy was the first attempt");
}
