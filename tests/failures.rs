//! Failure semantics: errors and panics become `WorkflowError::StepFailed` naming the workflow,
//! the run and the step; retries, permanent errors, timeouts that drop the attempt's future,
//! `StepContext::attempt()`/`idempotency_key()`, cancellation of in-flight siblings, and the
//! engine staying healthy afterwards.
//!
//! Patterns on `WorkflowError` use `..` so that new fields do not break these tests. Timeouts
//! run under virtual time (`start_paused`): a ten-minute timeout fires at once in real time.
//! No assertion depends on how long anything took.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use workflow_core::prelude::*;

/// Generous bound that only trips on a deadlock or a missing timeout.
const DEADLOCK: Duration = Duration::from_secs(30);

/// Sets its flag when dropped: proves a step's future was dropped.
struct DropGuard(Arc<AtomicBool>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

async fn yields(n: u32) {
    for _ in 0..n {
        tokio::task::yield_now().await;
    }
}

#[derive(Debug)]
struct Declined {
    code: u32,
}

impl fmt::Display for Declined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "declined with code {}", self.code)
    }
}

impl std::error::Error for Declined {}

// ---------------------------------------------------------------------------------------------
// 8. Panics and errors surface as StepFailed; the engine keeps working
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Mode {
    Ok,
    Panic,
    Err,
    Custom,
}

struct Boom {
    mode: Mode,
    run_id: Arc<Mutex<Option<RunId>>>,
    after_ran: Arc<AtomicBool>,
}

impl Boom {
    fn new(mode: Mode) -> Self {
        Boom {
            mode,
            run_id: Arc::default(),
            after_ran: Arc::default(),
        }
    }
}

#[workflow(name = "boom-flow")]
impl Boom {
    #[step]
    async fn prepare(&self, ctx: &StepContext, x: u32) -> u32 {
        *self.run_id.lock().unwrap() = Some(ctx.run_id().clone());
        x
    }
    #[step(after = prepare)]
    async fn explode(&self, x: u32) -> Result<u32, StepError> {
        match self.mode {
            Mode::Ok => Ok(x + 1),
            Mode::Panic => panic!("kaboom at {x}"),
            Mode::Err => Err(StepError::msg(format!("bad input {x}"))),
            Mode::Custom => Err(Declined { code: x }.into()),
        }
    }
    #[step(after = explode)]
    async fn after_boom(&self, x: u32) -> u32 {
        self.after_ran.store(true, Ordering::SeqCst);
        x * 2
    }
}

/// Runs `Boom` in `mode` and checks the common shape of the failure; returns the step error.
async fn expect_failure(engine: &Engine, mode: Mode) -> StepError {
    let wf = Boom::new(mode);
    let (run_id, after_ran) = (wf.run_id.clone(), wf.after_ran.clone());
    let finished = engine.run_with(&wf, 7, RunOptions::default()).await;
    let expected_run = run_id.lock().unwrap().clone().expect("`prepare` ran");
    let history = finished.history;
    match finished.result {
        Err(e @ WorkflowError::StepFailed { .. }) => {
            assert_eq!(e.run_id(), &expected_run);
            assert_eq!(e.step(), Some("explode"));
            let text = e.to_string();
            assert!(
                text.contains("boom-flow"),
                "message names the workflow: {text}"
            );
            assert!(
                text.contains(expected_run.as_str()),
                "message names the run: {text}"
            );
            assert!(text.contains("explode"), "message names the step: {text}");
            let WorkflowError::StepFailed {
                workflow,
                run_id,
                step,
                item,
                attempts,
                error,
                ..
            } = e
            else {
                unreachable!()
            };
            assert_eq!(workflow, "boom-flow");
            assert_eq!(run_id, expected_run);
            assert_eq!(step, "explode");
            assert_eq!(item, None);
            assert_eq!(attempts, 1);
            assert!(
                !after_ran.load(Ordering::SeqCst),
                "downstream of a failed step never runs"
            );
            assert_eq!(
                history.step("explode").unwrap().outcome,
                StepOutcome::Failed
            );
            assert_eq!(
                history.step("after_boom").unwrap().outcome,
                StepOutcome::Skipped
            );
            assert_eq!(history.path, ["prepare"]);
            error
        }
        other => panic!("expected StepFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn panic_surfaces_as_step_failed() {
    let error = expect_failure(&Engine::in_memory(), Mode::Panic).await;
    assert!(error.is_panic(), "{error}");
    assert!(!error.is_timeout());
    assert!(
        error.to_string().contains("kaboom at 7"),
        "keeps the panic message: {error}"
    );
}

#[tokio::test]
async fn err_surfaces_as_step_failed() {
    let error = expect_failure(&Engine::in_memory(), Mode::Err).await;
    assert!(!error.is_panic());
    assert!(!error.is_timeout());
    assert!(!error.is_permanent());
    assert_eq!(error.to_string(), "bad input 7");
}

#[tokio::test]
async fn custom_error_type_is_kept_for_downcasting() {
    let error = expect_failure(&Engine::in_memory(), Mode::Custom).await;
    assert_eq!(error.downcast_ref::<Declined>().map(|d| d.code), Some(7));
    assert_eq!(error.to_string(), "declined with code 7");
}

#[tokio::test]
async fn engine_keeps_running_workflows_after_failures() {
    let engine = Engine::in_memory();
    expect_failure(&engine, Mode::Panic).await;
    expect_failure(&engine, Mode::Err).await;
    assert_eq!(engine.run(&Boom::new(Mode::Ok), 1).await.unwrap(), 4);
    // A clone of the engine, too.
    expect_failure(&engine.clone(), Mode::Panic).await;
    assert_eq!(
        engine.clone().run(&Boom::new(Mode::Ok), 2).await.unwrap(),
        6
    );
}

/// The panicking run wakes the healthy one just before it panics, so the healthy run is in
/// flight at the moment of the panic.
struct Panicker {
    gate: Arc<Notify>,
}

#[workflow]
impl Panicker {
    #[step]
    async fn boom(&self, x: u32) -> u32 {
        yields(3).await;
        self.gate.notify_one();
        panic!("boom {x}");
    }
}

struct Waiter {
    gate: Arc<Notify>,
}

#[workflow]
impl Waiter {
    #[step]
    async fn wait(&self, x: u32) -> u32 {
        self.gate.notified().await;
        x + 1
    }
    #[step(after = wait)]
    async fn finish(&self, x: u32) -> u32 {
        yields(3).await;
        x * 10
    }
}

fn assert_panicked(result: Result<u32, WorkflowError>) {
    match result {
        Err(WorkflowError::StepFailed {
            step, ref error, ..
        }) => {
            assert_eq!(step, "boom");
            assert!(error.is_panic(), "{error}");
        }
        other => panic!("expected a StepFailed panic, got {other:?}"),
    }
}

#[tokio::test]
async fn panic_in_one_of_two_concurrent_runs_on_one_task_spares_the_other() {
    let engine = Engine::in_memory();
    let gate = Arc::new(Notify::new());
    let waiter = Waiter { gate: gate.clone() };
    let panicker = Panicker { gate: gate.clone() };
    let both = async { tokio::join!(engine.run(&waiter, 4), engine.run(&panicker, 0)) };
    let (healthy, panicked) = tokio::time::timeout(DEADLOCK, both)
        .await
        .expect("deadlock");
    assert_eq!(healthy.unwrap(), 50);
    assert_panicked(panicked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_in_one_of_two_spawned_runs_spares_the_other() {
    let engine = Engine::in_memory();
    let gate = Arc::new(Notify::new());
    let healthy = tokio::spawn({
        let (engine, gate) = (engine.clone(), gate.clone());
        async move { engine.run(&Waiter { gate }, 4).await }
    });
    let panicked = tokio::spawn({
        let engine = engine.clone();
        async move { engine.run(&Panicker { gate }, 0).await }
    });
    let panicked = tokio::time::timeout(DEADLOCK, panicked)
        .await
        .expect("deadlock");
    assert_panicked(panicked.expect("the panic is caught inside the run, not the task"));
    let healthy = tokio::time::timeout(DEADLOCK, healthy)
        .await
        .expect("deadlock");
    assert_eq!(healthy.unwrap().unwrap(), 50);
}

/// When a step fails for good, the run's other in-flight steps are dropped.
struct Sibling {
    dropped: Arc<AtomicBool>,
    started: Arc<Notify>,
}

#[workflow]
impl Sibling {
    #[step]
    async fn start(&self, x: u32) -> u32 {
        x
    }
    #[step(after = start)]
    async fn hang(&self, x: u32) -> u32 {
        let _guard = DropGuard(self.dropped.clone());
        self.started.notify_one();
        std::future::pending::<()>().await;
        x
    }
    #[step(after = start)]
    async fn fail(&self, _x: u32) -> Result<u32, StepError> {
        self.started.notified().await; // `hang` is in flight
        Err(StepError::msg("nope"))
    }
    #[step(after = [hang, fail])]
    async fn end(&self, a: u32, b: u32) -> u32 {
        a + b
    }
}

#[tokio::test]
async fn failure_cancels_in_flight_siblings() {
    let dropped = Arc::new(AtomicBool::new(false));
    let wf = Sibling {
        dropped: dropped.clone(),
        started: Arc::new(Notify::new()),
    };
    let finished = tokio::time::timeout(
        DEADLOCK,
        Engine::in_memory().run_with(&wf, 1, RunOptions::default()),
    )
    .await
    .expect("the failed run must not wait for its hanging sibling");
    assert!(matches!(
        finished.result,
        Err(WorkflowError::StepFailed { step: "fail", .. })
    ));
    assert!(
        dropped.load(Ordering::SeqCst),
        "the sibling's future was dropped"
    );
    let h = finished.history;
    assert_eq!(h.step("hang").unwrap().outcome, StepOutcome::Cancelled);
    assert_eq!(h.step("fail").unwrap().outcome, StepOutcome::Failed);
    assert_eq!(h.step("end").unwrap().outcome, StepOutcome::Skipped);
}

/// A failing `for_each` item names its index.
struct Items;

#[workflow]
impl Items {
    #[step]
    async fn list(&self, n: u32) -> Vec<u32> {
        (0..n).collect()
    }
    #[step(after = list, for_each, concurrency = 3)]
    async fn work(&self, x: u32) -> Result<u32, StepError> {
        if x == 7 {
            Err(StepError::msg("item seven"))
        } else {
            Ok(x)
        }
    }
    #[step(after = work)]
    async fn sum(&self, xs: Vec<u32>) -> u32 {
        xs.iter().sum()
    }
}

#[tokio::test]
async fn failing_for_each_item_is_named() {
    match Engine::in_memory().run(&Items, 10).await {
        Err(e @ WorkflowError::StepFailed { .. }) => {
            assert!(e.to_string().contains("item 7"), "{e}");
            let WorkflowError::StepFailed { step, item, .. } = e else {
                unreachable!()
            };
            assert_eq!((step, item), ("work", Some(7)));
        }
        other => panic!("expected StepFailed, got {other:?}"),
    }
    assert_eq!(Engine::in_memory().run(&Items, 7).await.unwrap(), 21);
}

/// The output step's branch was not taken: `NoOutput`, naming the output step.
struct Maybe;

#[workflow]
impl Maybe {
    #[step]
    async fn decide(&self, yes: bool) -> bool {
        yes
    }
    #[step(after = decide, branch = true, output)]
    async fn accepted(&self) -> String {
        "accepted".to_string()
    }
    #[step(after = decide, branch = false)]
    async fn rejected(&self) -> String {
        "rejected".to_string()
    }
}

#[tokio::test]
async fn untaken_output_step_is_no_output() {
    let engine = Engine::in_memory();
    assert_eq!(engine.run(&Maybe, true).await.unwrap(), "accepted");
    match engine.run(&Maybe, false).await {
        Err(WorkflowError::NoOutput {
            workflow, steps, ..
        }) => {
            assert_eq!(workflow, "Maybe");
            assert_eq!(steps, ["accepted"]);
        }
        other => panic!("expected NoOutput, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// 10. Retries, permanent errors, timeouts, StepContext
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Calls {
    count: AtomicU32,
    /// (attempt(), idempotency_key(), run id) as seen by each attempt.
    seen: Mutex<Vec<(u32, String, String)>>,
}

struct Flaky {
    fail_first: u32,
    permanent: bool,
    calls: Arc<Calls>,
}

impl Flaky {
    fn new(fail_first: u32) -> Self {
        Flaky {
            fail_first,
            permanent: false,
            calls: Arc::default(),
        }
    }
}

#[workflow]
impl Flaky {
    #[step(retry = 3)]
    async fn call(&self, ctx: &StepContext, x: u32) -> Result<u32, StepError> {
        let n = self.calls.count.fetch_add(1, Ordering::SeqCst) + 1;
        let seen = (
            ctx.attempt(),
            ctx.idempotency_key(),
            ctx.run_id().to_string(),
        );
        self.calls.seen.lock().unwrap().push(seen);
        if self.permanent {
            return Err(StepError::permanent(Declined { code: n }));
        }
        if n <= self.fail_first {
            return Err(StepError::msg(format!("failure #{n}")));
        }
        Ok(x + n)
    }
    #[step(after = call)]
    async fn other(&self, ctx: &StepContext, x: u32) -> (u32, String) {
        (x, ctx.idempotency_key())
    }
}

#[tokio::test]
async fn step_failing_twice_then_succeeding_runs_three_times() {
    let wf = Flaky::new(2);
    let calls = wf.calls.clone();
    let finished = Engine::in_memory()
        .run_with(&wf, 100, RunOptions::default())
        .await;
    let (out, other_key) = finished.result.unwrap();
    assert_eq!(out, 103, "the third attempt's output");
    assert_eq!(calls.count.load(Ordering::SeqCst), 3);
    let seen = calls.seen.lock().unwrap().clone();
    let attempts: Vec<u32> = seen.iter().map(|s| s.0).collect();
    assert_eq!(attempts, [1, 2, 3], "StepContext::attempt() counts from 1");
    let key = &seen[0].1;
    assert!(
        seen.iter().all(|s| &s.1 == key),
        "idempotency key is stable across attempts: {seen:?}"
    );
    assert!(
        key.contains(&seen[0].2),
        "the key is scoped to the run: {key}"
    );
    assert_ne!(
        &other_key, key,
        "another step of the same run has another key"
    );
    let record = finished.history.step("call").unwrap();
    assert_eq!((record.attempts, record.completions), (3, 1));
    assert_eq!(record.outcome, StepOutcome::Completed);

    // Another run: another key for the same step.
    let wf = Flaky::new(0);
    let calls2 = wf.calls.clone();
    Engine::in_memory().run(&wf, 1).await.unwrap();
    assert_ne!(
        &calls2.seen.lock().unwrap()[0].1,
        key,
        "each run has its own keys"
    );
}

#[tokio::test]
async fn retries_are_bounded() {
    let wf = Flaky::new(u32::MAX);
    let calls = wf.calls.clone();
    match Engine::in_memory().run(&wf, 0).await {
        Err(WorkflowError::StepFailed {
            step,
            attempts,
            error,
            ..
        }) => {
            assert_eq!(step, "call");
            assert_eq!(attempts, 4, "the first attempt and three retries");
            assert_eq!(error.to_string(), "failure #4", "the last attempt's error");
        }
        other => panic!("expected StepFailed, got {other:?}"),
    }
    assert_eq!(calls.count.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn permanent_error_is_not_retried() {
    let wf = Flaky {
        permanent: true,
        ..Flaky::new(0)
    };
    let calls = wf.calls.clone();
    match Engine::in_memory().run(&wf, 0).await {
        Err(WorkflowError::StepFailed {
            step,
            attempts,
            error,
            ..
        }) => {
            assert_eq!(step, "call");
            assert_eq!(attempts, 1);
            assert!(error.is_permanent());
            assert_eq!(error.downcast_ref::<Declined>().map(|d| d.code), Some(1));
        }
        other => panic!("expected StepFailed, got {other:?}"),
    }
    assert_eq!(calls.count.load(Ordering::SeqCst), 1);
}

/// A panic is a failed attempt like any other: it is retried.
struct PanicOnce {
    calls: Arc<AtomicU32>,
}

#[workflow]
impl PanicOnce {
    #[step(retry = 2)]
    async fn shaky(&self, x: u32) -> u32 {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("first attempt panics");
        }
        x * 3
    }
}

#[tokio::test]
async fn panicking_attempt_is_retried() {
    let calls = Arc::new(AtomicU32::new(0));
    let out = Engine::in_memory()
        .run(
            &PanicOnce {
                calls: calls.clone(),
            },
            5,
        )
        .await
        .unwrap();
    assert_eq!(out, 15);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// A hanging step under `timeout`: fails with `is_timeout` and its future is dropped.
struct Hang {
    dropped: Arc<AtomicBool>,
}

#[workflow]
impl Hang {
    #[step(timeout = "10m")]
    async fn hang(&self, x: u32) -> u32 {
        let _guard = DropGuard(self.dropped.clone());
        std::future::pending::<()>().await;
        x
    }
}

#[tokio::test(start_paused = true)]
async fn timeout_fails_the_step_and_drops_its_future() {
    let dropped = Arc::new(AtomicBool::new(false));
    let started = tokio::time::Instant::now();
    let result = Engine::in_memory()
        .run(
            &Hang {
                dropped: dropped.clone(),
            },
            1,
        )
        .await;
    assert!(
        started.elapsed() >= Duration::from_secs(600),
        "the attempt ran for its whole (virtual) timeout"
    );
    match result {
        Err(WorkflowError::StepFailed {
            step,
            attempts,
            error,
            ..
        }) => {
            assert_eq!(step, "hang");
            assert_eq!(attempts, 1);
            assert!(error.is_timeout(), "{error}");
            assert!(!error.is_panic());
        }
        other => panic!("expected StepFailed, got {other:?}"),
    }
    assert!(
        dropped.load(Ordering::SeqCst),
        "the timed-out future was dropped"
    );
}

/// Timeout + retry: the timed-out attempt's future is dropped before the next attempt starts.
struct HangOnce {
    dropped: Arc<AtomicBool>,
}

#[workflow]
impl HangOnce {
    #[step(retry = 1, timeout = "10m")]
    async fn call(&self, ctx: &StepContext, x: u32) -> (u32, bool) {
        if ctx.attempt() == 1 {
            let _guard = DropGuard(self.dropped.clone());
            std::future::pending::<()>().await;
        }
        (x, self.dropped.load(Ordering::SeqCst))
    }
}

#[tokio::test(start_paused = true)]
async fn timed_out_attempt_is_dropped_before_the_retry() {
    let dropped = Arc::new(AtomicBool::new(false));
    let out = Engine::in_memory()
        .run(&HangOnce { dropped }, 9)
        .await
        .unwrap();
    assert_eq!(
        out,
        (9, true),
        "second attempt ran after the first one's future was dropped"
    );
}

/// `for_each` items are retried one by one, each with its own idempotency key.
struct ItemRetry {
    keys: Arc<Mutex<Vec<(usize, u32, String)>>>,
}

#[workflow]
impl ItemRetry {
    #[step]
    async fn list(&self, n: u32) -> Vec<u32> {
        (0..n).collect()
    }
    #[step(after = list, for_each, concurrency = 2, retry = 1)]
    async fn work(&self, ctx: &StepContext, x: u32) -> Result<u32, StepError> {
        let item = ctx.item().unwrap();
        self.keys
            .lock()
            .unwrap()
            .push((item, ctx.attempt(), ctx.idempotency_key()));
        if x % 2 == 1 && ctx.attempt() == 1 {
            return Err(StepError::msg("odd items fail once"));
        }
        Ok(x * 10)
    }
    #[step(after = work)]
    async fn done(&self, xs: Vec<u32>) -> Vec<u32> {
        xs
    }
}

#[tokio::test]
async fn for_each_items_retry_individually() {
    let keys = Arc::new(Mutex::new(Vec::new()));
    let out = Engine::in_memory()
        .run(&ItemRetry { keys: keys.clone() }, 6)
        .await
        .unwrap();
    assert_eq!(out, [0, 10, 20, 30, 40, 50]);
    let mut seen = keys.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen.len(), 9, "6 items, 3 of them twice: {seen:?}");
    for item in 0..6 {
        let attempts: Vec<_> = seen.iter().filter(|s| s.0 == item).collect();
        let expected: &[u32] = if item % 2 == 1 { &[1, 2] } else { &[1] };
        assert_eq!(
            attempts.iter().map(|s| s.1).collect::<Vec<_>>(),
            expected,
            "item {item}"
        );
        assert!(
            attempts.iter().all(|s| s.2 == attempts[0].2),
            "stable key per item"
        );
    }
    let mut distinct: Vec<&String> = seen.iter().map(|s| &s.2).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 6, "each item has its own key");
}
