//! Runtime semantics of the DSL: joins, fan-out, `for_each`, `any`, branches, loops, outputs,
//! eager scheduling and concurrent runs.
//!
//! No assertion depends on wall-clock time: concurrency is proven with barriers, notifies and
//! in-flight counters, and completion order is shaped with `yield_now` loops. Every wait that a
//! wrong scheduler could turn into a deadlock is wrapped in `tokio::time::timeout`, so a
//! deadlock fails the test instead of hanging it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Barrier, Notify};
use workflow_core::prelude::*;

/// Generous bound that only trips on a deadlock, never on a slow machine.
const DEADLOCK: Duration = Duration::from_secs(30);

async fn yields(n: u64) {
    for _ in 0..n {
        tokio::task::yield_now().await;
    }
}

/// splitmix64: a cheap deterministic PRNG.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

type Log = Arc<Mutex<Vec<&'static str>>>;

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

fn take(log: &Log) -> Vec<&'static str> {
    log.lock().unwrap().clone()
}

// ---------------------------------------------------------------------------------------------
// 1. Diamond and static fan-out
// ---------------------------------------------------------------------------------------------

struct Diamond;

#[workflow]
impl Diamond {
    #[step]
    async fn a(&self, x: u32) -> u32 {
        x + 1
    }
    #[step(after = a)]
    async fn b(&self, x: u32) -> u32 {
        x * 10
    }
    #[step(after = a)]
    async fn c(&self, x: u32) -> String {
        format!("c{x}")
    }
    #[step(after = [b, c])]
    async fn d(&self, b: u32, c: String) -> String {
        format!("{b}/{c}")
    }
}

#[tokio::test]
async fn diamond_joins_both_sides() {
    let finished = Engine::in_memory()
        .run_with(&Diamond, 4, RunOptions::default())
        .await;
    assert_eq!(finished.result.unwrap(), "50/c5");
    let h = finished.history;
    assert_eq!(h.path.len(), 4, "each step runs exactly once: {:?}", h.path);
    assert_eq!(h.path.first(), Some(&"a"));
    assert_eq!(h.path.last(), Some(&"d"));
    assert!(h.with_outcome(StepOutcome::Skipped).is_empty());
    for step in ["a", "b", "c", "d"] {
        let r = h.step(step).unwrap();
        assert_eq!(r.outcome, StepOutcome::Completed, "{step}");
        assert_eq!((r.attempts, r.completions), (1, 1), "{step}");
    }
}

/// One start step, four parallel steps, an all-join. The four steps wait on a barrier of four:
/// the run can only finish if all four are in flight at the same time.
struct FanOut {
    barrier: Arc<Barrier>,
}

#[workflow]
impl FanOut {
    #[step]
    async fn split(&self, x: u64) -> u64 {
        x
    }
    #[step(after = split)]
    async fn p1(&self, x: u64) -> u64 {
        self.barrier.wait().await;
        x + 1
    }
    #[step(after = split)]
    async fn p2(&self, x: u64) -> String {
        self.barrier.wait().await;
        format!("two:{x}")
    }
    #[step(after = split)]
    async fn p3(&self, x: u64) -> (u64, bool) {
        self.barrier.wait().await;
        (x * 3, x.is_multiple_of(2))
    }
    #[step(after = split)]
    async fn p4(&self, x: u64) -> Vec<u64> {
        self.barrier.wait().await;
        vec![x; 4]
    }
    #[step(after = [p1, p2, p3, p4])]
    async fn gather(&self, a: u64, b: String, c: (u64, bool), d: Vec<u64>) -> String {
        format!("{a} {b} {c:?} {d:?}")
    }
}

#[tokio::test]
async fn static_fan_out_runs_branches_in_parallel_and_joins_all() {
    let wf = FanOut {
        barrier: Arc::new(Barrier::new(4)),
    };
    let out = tokio::time::timeout(DEADLOCK, Engine::in_memory().run(&wf, 6))
        .await
        .expect("fan-out steps were not all in flight at once (deadlock on the barrier)")
        .unwrap();
    assert_eq!(out, "7 two:6 (18, true) [6, 6, 6, 6]");
}

// ---------------------------------------------------------------------------------------------
// 2. for_each: item order and the concurrency limit
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct MapStats {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    calls: AtomicUsize,
    completion_order: Mutex<Vec<u32>>,
}

struct Squares {
    stats: Arc<MapStats>,
}

#[workflow]
impl Squares {
    #[step]
    async fn items(&self, n: u32) -> Vec<u32> {
        (0..n).collect()
    }
    #[step(after = items, for_each, concurrency = 7)]
    async fn square(&self, x: u32) -> u64 {
        let s = &self.stats;
        s.calls.fetch_add(1, Ordering::SeqCst);
        let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        s.max_in_flight.fetch_max(now, Ordering::SeqCst);
        // Items finish out of order: the number of yields depends on the item.
        yields(mix(u64::from(x)) % 17).await;
        s.in_flight.fetch_sub(1, Ordering::SeqCst);
        s.completion_order.lock().unwrap().push(x);
        u64::from(x) * u64::from(x)
    }
    #[step(after = square)]
    async fn collect(&self, squares: Vec<u64>) -> Vec<u64> {
        squares
    }
}

#[tokio::test]
async fn for_each_returns_results_in_item_order_and_respects_concurrency() {
    let stats = Arc::new(MapStats::default());
    let out = Engine::in_memory()
        .run(
            &Squares {
                stats: stats.clone(),
            },
            1000,
        )
        .await
        .unwrap();
    let expected: Vec<u64> = (0..1000u64).map(|x| x * x).collect();
    assert_eq!(out, expected, "results must be in item order");
    assert_eq!(
        stats.calls.load(Ordering::SeqCst),
        1000,
        "one invocation per item"
    );
    let order = stats.completion_order.lock().unwrap().clone();
    assert_eq!(order.len(), 1000);
    assert!(
        order.windows(2).any(|w| w[0] > w[1]),
        "test precondition: items should finish out of order"
    );
    let max = stats.max_in_flight.load(Ordering::SeqCst);
    assert!(max <= 7, "concurrency = 7 exceeded: {max} items in flight");
    assert_eq!(
        max, 7,
        "concurrency = 7 should actually run 7 items at once"
    );
}

#[tokio::test]
async fn for_each_over_nothing_gives_an_empty_vec() {
    let stats = Arc::new(MapStats::default());
    let finished = Engine::in_memory()
        .run_with(
            &Squares {
                stats: stats.clone(),
            },
            0,
            RunOptions::default(),
        )
        .await;
    assert_eq!(finished.result.unwrap(), Vec::<u64>::new());
    assert_eq!(stats.calls.load(Ordering::SeqCst), 0);
    assert_eq!(finished.history.path, ["items", "square", "collect"]);
}

/// Without `concurrency`, every item is in flight at once: a barrier sized to the item count
/// only opens if that is true.
struct Unbounded {
    barrier: Arc<Barrier>,
}

#[workflow]
impl Unbounded {
    #[step]
    async fn items(&self, n: usize) -> Vec<usize> {
        (0..n).rev().collect()
    }
    #[step(after = items, for_each)]
    async fn each(&self, ctx: &StepContext, x: usize) -> (usize, usize) {
        self.barrier.wait().await;
        (ctx.item().unwrap(), x)
    }
    // A downstream step: a terminal `for_each` step does not compile (see
    // `for_each_step_can_be_the_output`).
    #[step(after = each)]
    async fn gather(&self, results: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
        results
    }
}

#[tokio::test]
async fn for_each_without_limit_runs_all_items_at_once() {
    let n = 200;
    let wf = Unbounded {
        barrier: Arc::new(Barrier::new(n)),
    };
    let out = tokio::time::timeout(DEADLOCK, Engine::in_memory().run(&wf, n))
        .await
        .expect("not all items were in flight at once")
        .unwrap();
    let expected: Vec<(usize, usize)> = (0..n).map(|i| (i, n - 1 - i)).collect();
    assert_eq!(
        out, expected,
        "StepContext::item() is the item's index; results in item order"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. All-joins receive their inputs in declared order
// ---------------------------------------------------------------------------------------------

struct Ordered;

#[workflow]
impl Ordered {
    #[step]
    async fn start(&self, x: u8) -> u8 {
        x
    }
    #[step(after = start)]
    async fn a(&self, x: u8) -> u32 {
        u32::from(x) + 1000 // finishes first
    }
    #[step(after = start)]
    async fn b(&self, x: u8) -> bool {
        yields(10).await;
        x % 2 == 1 // finishes second
    }
    #[step(after = start)]
    async fn c(&self, x: u8) -> String {
        yields(30).await;
        format!("c={x}") // finishes last
    }
    #[step(after = [c, a, b])]
    async fn joined(&self, c: String, a: u32, b: bool) -> (String, u32, bool) {
        (c, a, b)
    }
}

#[tokio::test]
async fn all_join_receives_inputs_in_declared_order_not_completion_order() {
    let finished = Engine::in_memory()
        .run_with(&Ordered, 7, RunOptions::default())
        .await;
    assert_eq!(finished.result.unwrap(), ("c=7".to_string(), 1007, true));
    assert_eq!(
        finished.history.path,
        ["start", "a", "b", "c", "joined"],
        "precondition: completion order differs from the declared order [c, a, b]"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. `any` joins fire exactly once
// ---------------------------------------------------------------------------------------------

struct Race {
    seed: u64,
    finished: Log,
    joins: Arc<AtomicUsize>,
    downstream: Arc<AtomicUsize>,
}

impl Race {
    async fn run_side(&self, side: u64, name: &'static str) -> &'static str {
        yields(mix(self.seed * 3 + side) % 8).await;
        self.finished.lock().unwrap().push(name);
        name
    }
}

#[workflow]
impl Race {
    #[step]
    async fn start(&self, x: u32) -> u32 {
        x
    }
    #[step(after = start)]
    async fn left(&self, _x: u32) -> &'static str {
        self.run_side(0, "left").await
    }
    #[step(after = start)]
    async fn middle(&self, _x: u32) -> &'static str {
        self.run_side(1, "middle").await
    }
    #[step(after = start)]
    async fn right(&self, _x: u32) -> &'static str {
        self.run_side(2, "right").await
    }
    #[step(after = any(left, middle, right))]
    async fn first(&self, winner: &'static str) -> &'static str {
        self.joins.fetch_add(1, Ordering::SeqCst);
        winner
    }
    #[step(after = first)]
    async fn report(&self, winner: &'static str) -> &'static str {
        self.downstream.fetch_add(1, Ordering::SeqCst);
        winner
    }
}

#[tokio::test]
async fn any_join_runs_exactly_once_with_the_first_arrival_in_1000_runs() {
    let engine = Engine::in_memory();
    let joins = Arc::new(AtomicUsize::new(0));
    let downstream = Arc::new(AtomicUsize::new(0));
    let mut wins = std::collections::BTreeMap::new();
    for seed in 0..1000u64 {
        let finished = log();
        let wf = Race {
            seed,
            finished: finished.clone(),
            joins: joins.clone(),
            downstream: downstream.clone(),
        };
        let before = joins.load(Ordering::SeqCst);
        let run = engine.run_with(&wf, 1, RunOptions::default()).await;
        let winner = run.result.unwrap();
        assert_eq!(
            joins.load(Ordering::SeqCst),
            before + 1,
            "seed {seed}: `first` must run once"
        );
        let order = take(&finished);
        assert_eq!(
            order.len(),
            3,
            "seed {seed}: every upstream still completes: {order:?}"
        );
        assert_eq!(
            winner, order[0],
            "seed {seed}: `first` gets the first arrival ({order:?})"
        );
        let path = &run.history.path;
        assert_eq!(
            path.iter().filter(|s| **s == "first").count(),
            1,
            "seed {seed}: {path:?}"
        );
        assert_eq!(
            path.iter().filter(|s| **s == "report").count(),
            1,
            "seed {seed}: {path:?}"
        );
        let record = run.history.step("first").unwrap();
        assert_eq!((record.attempts, record.completions), (1, 1));
        *wins.entry(winner).or_insert(0) += 1;
    }
    assert_eq!(joins.load(Ordering::SeqCst), 1000);
    assert_eq!(downstream.load(Ordering::SeqCst), 1000);
    assert_eq!(
        wins.len(),
        3,
        "precondition: every side should win sometimes: {wins:?}"
    );
}

/// BUG (see report): `any` + `retry`. The generated dispatcher stores every upstream's output into
/// the `any` step's input slot, also after the join fired; a retried attempt clones the slot, so
/// it receives the *late* arrival instead of the first one.
struct AnyRetry {
    attempts: Arc<Mutex<Vec<&'static str>>>,
}

#[workflow]
impl AnyRetry {
    #[step]
    async fn start(&self, x: u32) -> u32 {
        x
    }
    #[step(after = start)]
    async fn fast(&self, _x: u32) -> &'static str {
        "fast"
    }
    #[step(after = start)]
    async fn slow(&self, _x: u32) -> &'static str {
        yields(5).await;
        "slow"
    }
    #[step(after = any(fast, slow), retry = 1)]
    async fn pick(
        &self,
        ctx: &StepContext,
        winner: &'static str,
    ) -> Result<&'static str, StepError> {
        self.attempts.lock().unwrap().push(winner);
        if ctx.attempt() == 1 {
            yields(20).await; // `slow` arrives meanwhile
            return Err(StepError::msg("transient"));
        }
        Ok(winner)
    }
}

#[tokio::test]
async fn any_join_retry_keeps_the_first_arrival() {
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let finished = Engine::in_memory()
        .run_with(
            &AnyRetry {
                attempts: attempts.clone(),
            },
            0,
            RunOptions::default(),
        )
        .await;
    let path = finished.history.path.clone();
    assert_eq!(
        path[..3],
        ["start", "fast", "slow"],
        "precondition: `slow` arrives late"
    );
    assert_eq!(
        *attempts.lock().unwrap(),
        ["fast", "fast"],
        "every attempt of an `any` step must get the first arrival, not a late one"
    );
    assert_eq!(finished.result.unwrap(), "fast");
}

// ---------------------------------------------------------------------------------------------
// 5. Branches: exactly one fires; the rest and their downstream are skipped
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Ticket {
    Bug(String, u8),
    Feature(String),
    Question(String),
}

struct Triage {
    ran: Log,
}

#[workflow]
impl Triage {
    #[step]
    async fn classify(&self, text: String) -> Ticket {
        self.ran.lock().unwrap().push("classify");
        let sev = text.bytes().filter(|b| *b == b'!').count() as u8;
        if text.contains("crash") {
            Ticket::Bug(text, sev)
        } else if text.contains("please") {
            Ticket::Feature(text)
        } else {
            Ticket::Question(text)
        }
    }
    /// The whole value, bound with `@`; declared first, so it wins over the next arm.
    #[step(after = classify, branch = urgent @ Ticket::Bug(_, 3..))]
    async fn escalate(&self, urgent: Ticket) -> Ticket {
        self.ran.lock().unwrap().push("escalate");
        urgent
    }
    #[step(after = escalate)]
    async fn page(&self, ticket: Ticket) -> String {
        self.ran.lock().unwrap().push("page");
        format!("paged: {ticket:?}")
    }
    /// Two bindings, received in pattern order.
    #[step(after = classify, branch = Ticket::Bug(text, sev))]
    async fn file_bug(&self, text: String, sev: u8) -> String {
        self.ran.lock().unwrap().push("file_bug");
        format!("bug sev {sev}: {text}")
    }
    #[step(after = classify, branch = Ticket::Feature(f))]
    async fn roadmap(&self, f: String) -> String {
        self.ran.lock().unwrap().push("roadmap");
        format!("roadmap: {f}")
    }
    /// The default arm.
    #[step(after = classify, branch = _)]
    async fn answer(&self) -> String {
        self.ran.lock().unwrap().push("answer");
        "answered".to_string()
    }
}

#[tokio::test]
async fn exactly_one_branch_fires_and_the_rest_is_skipped() {
    let engine = Engine::in_memory();
    let cases: [(&str, &str, &[&str], &[&str]); 4] = [
        (
            "crash!!! on start",
            r#"paged: Bug("crash!!! on start", 3)"#,
            &["classify", "escalate", "page"],
            &["file_bug", "roadmap", "answer"],
        ),
        (
            "crash! sometimes",
            "bug sev 1: crash! sometimes",
            &["classify", "file_bug"],
            &["escalate", "page", "roadmap", "answer"],
        ),
        (
            "please add dark mode",
            "roadmap: please add dark mode",
            &["classify", "roadmap"],
            &["escalate", "page", "file_bug", "answer"],
        ),
        (
            "how do I log in?",
            "answered",
            &["classify", "answer"],
            &["escalate", "page", "file_bug", "roadmap"],
        ),
    ];
    for (input, output, ran, skipped) in cases {
        let wf = Triage { ran: log() };
        let ran_log = wf.ran.clone();
        let finished = engine
            .run_with(&wf, input.to_string(), RunOptions::default())
            .await;
        assert_eq!(finished.result.unwrap(), output, "{input}");
        assert_eq!(take(&ran_log), ran, "{input}: invoked steps");
        assert_eq!(finished.history.path, ran, "{input}: path");
        assert_eq!(
            finished.history.with_outcome(StepOutcome::Skipped),
            skipped,
            "{input}"
        );
        assert_eq!(
            finished.history.with_outcome(StepOutcome::Completed),
            ran,
            "{input}"
        );
    }
}

/// Skips propagate through all-joins (which need every input) but not through `any` joins.
struct Gate;

#[workflow]
impl Gate {
    #[step]
    async fn check(&self, n: i32) -> Option<i32> {
        (n > 0).then_some(n)
    }
    #[step(after = check, branch = Some(v))]
    async fn pos(&self, v: i32) -> i32 {
        v * 10
    }
    #[step(after = check, branch = None)]
    async fn neg(&self) -> i32 {
        -1
    }
    #[step(after = check)]
    async fn audit(&self, seen: Option<i32>) -> String {
        format!("{seen:?}")
    }
    #[step(after = [pos, audit])]
    async fn both(&self, p: i32, a: String) -> String {
        format!("{p} {a}")
    }
    #[step(after = both)]
    async fn tail(&self, s: String) -> String {
        s
    }
    #[step(after = any(pos, neg), output)]
    async fn either(&self, v: i32) -> i32 {
        v
    }
}

#[tokio::test]
async fn skips_propagate_through_all_joins_but_any_join_runs() {
    let engine = Engine::in_memory();
    let taken = engine.run_with(&Gate, 5, RunOptions::default()).await;
    assert_eq!(taken.result.unwrap(), 50);
    assert_eq!(taken.history.with_outcome(StepOutcome::Skipped), ["neg"]);

    let untaken = engine.run_with(&Gate, -5, RunOptions::default()).await;
    assert_eq!(untaken.result.unwrap(), -1);
    assert_eq!(
        untaken.history.with_outcome(StepOutcome::Skipped),
        ["pos", "both", "tail"]
    );
    assert_eq!(
        untaken.history.step("audit").unwrap().outcome,
        StepOutcome::Completed
    );
    assert_eq!(untaken.history.step("either").unwrap().completions, 1);
}

// ---------------------------------------------------------------------------------------------
// 6. Loops
// ---------------------------------------------------------------------------------------------

struct Counter {
    head_runs: Arc<AtomicUsize>,
}

#[workflow]
impl Counter {
    #[step]
    async fn init(&self, target: u32) -> (u32, u32) {
        (0, target)
    }
    #[step(after = any(init, settle), max_passes = 5)]
    async fn check(&self, state: (u32, u32)) -> (u32, u32, bool) {
        self.head_runs.fetch_add(1, Ordering::SeqCst);
        let (n, target) = state;
        (n, target, n >= target)
    }
    #[step(after = check, branch = (n, t, false))]
    async fn bump(&self, n: u32, t: u32) -> (u32, u32) {
        (n + 1, t)
    }
    #[step(after = bump)]
    async fn settle(&self, state: (u32, u32)) -> (u32, u32) {
        yields(1).await;
        state
    }
    #[step(after = check, branch = (n, _, true))]
    async fn finish(&self, n: u32) -> String {
        format!("done at {n}")
    }
}

fn counter() -> (Counter, Arc<AtomicUsize>) {
    let runs = Arc::new(AtomicUsize::new(0));
    (
        Counter {
            head_runs: runs.clone(),
        },
        runs,
    )
}

#[tokio::test]
async fn loop_that_exits_early_gives_output_and_path() {
    let (wf, runs) = counter();
    let finished = Engine::in_memory()
        .run_with(&wf, 2, RunOptions::default())
        .await;
    assert_eq!(finished.result.unwrap(), "done at 2");
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert_eq!(
        finished.history.path,
        ["init", "check", "bump", "settle", "check", "bump", "settle", "check", "finish"]
    );
    let h = &finished.history;
    assert_eq!(h.step("check").unwrap().completions, 3);
    assert_eq!(h.step("bump").unwrap().completions, 2);
    assert_eq!(h.step("finish").unwrap().completions, 1);
    assert!(h.with_outcome(StepOutcome::Skipped).is_empty());
}

#[tokio::test]
async fn loop_may_run_its_head_exactly_max_passes_times() {
    let (wf, runs) = counter();
    let out = Engine::in_memory().run(&wf, 4).await.unwrap();
    assert_eq!(out, "done at 4");
    assert_eq!(runs.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn loop_past_its_bound_fails_naming_the_loop_head() {
    for target in [5, 1_000_000] {
        let (wf, runs) = counter();
        let finished = Engine::in_memory()
            .run_with(&wf, target, RunOptions::default())
            .await;
        match finished.result {
            Err(WorkflowError::LoopLimitExceeded {
                workflow,
                step,
                max_passes,
                ..
            }) => {
                assert_eq!(workflow, "Counter");
                assert_eq!(step, "check");
                assert_eq!(max_passes, 5);
            }
            other => panic!("expected LoopLimitExceeded, got {other:?}"),
        }
        assert_eq!(
            runs.load(Ordering::SeqCst),
            5,
            "the head ran max_passes times, no more"
        );
        assert_eq!(
            finished.history.step("finish").unwrap().outcome,
            StepOutcome::Skipped
        );
        assert_eq!(finished.history.step("settle").unwrap().completions, 5);
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Deterministic output
// ---------------------------------------------------------------------------------------------

/// Two terminals on exclusive branches, with jittered timing: the output is always the one
/// of the branch that was taken.
struct Parity {
    seed: u64,
}

#[workflow]
impl Parity {
    #[step]
    async fn start(&self, n: u64) -> u64 {
        yields(mix(self.seed) % 5).await;
        n
    }
    #[step(after = start)]
    async fn side(&self, n: u64) -> bool {
        yields(mix(self.seed + 1) % 5).await;
        n.is_multiple_of(2)
    }
    #[step(after = side, branch = true)]
    async fn even(&self) -> String {
        yields(mix(self.seed + 2) % 5).await;
        "even".to_string()
    }
    #[step(after = side, branch = false)]
    async fn odd(&self) -> String {
        "odd".to_string()
    }
}

#[tokio::test]
async fn output_of_exclusive_terminals_is_the_taken_branch() {
    let engine = Engine::in_memory();
    for seed in 0..200 {
        let n = mix(seed) % 100;
        let want = if n.is_multiple_of(2) { "even" } else { "odd" };
        assert_eq!(
            engine.run(&Parity { seed }, n).await.unwrap(),
            want,
            "seed {seed}"
        );
    }
}

/// Two terminals that both run: `#[step(output)]` picks the output whichever finishes last.
struct Marked {
    answer_yields: u64,
    audit_yields: u64,
}

#[workflow]
impl Marked {
    #[step]
    async fn start(&self, x: u32) -> u32 {
        x
    }
    #[step(after = start, output)]
    async fn answer(&self, x: u32) -> u32 {
        yields(self.answer_yields).await;
        x * 2
    }
    #[step(after = start)]
    async fn audit(&self, x: u32) -> u32 {
        yields(self.audit_yields).await;
        x + 1000
    }
}

#[tokio::test]
async fn output_marker_wins_whichever_terminal_finishes_last() {
    let engine = Engine::in_memory();
    for (answer_yields, audit_yields, last) in [(0, 10, "audit"), (10, 0, "answer")] {
        let wf = Marked {
            answer_yields,
            audit_yields,
        };
        let finished = engine.run_with(&wf, 21, RunOptions::default()).await;
        assert_eq!(finished.result.unwrap(), 42);
        assert_eq!(finished.history.path.last(), Some(&last), "precondition");
        assert_eq!(
            finished.history.with_outcome(StepOutcome::Completed),
            ["start", "answer", "audit"]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 9. Eager scheduling: a slow branch never holds back an unrelated one
// ---------------------------------------------------------------------------------------------

struct Eager {
    gate: Arc<Notify>,
    done: Log,
}

#[workflow]
impl Eager {
    #[step]
    async fn start(&self, x: u32) -> u32 {
        x
    }
    /// Cannot finish until the fast path's last step has run.
    #[step(after = start)]
    async fn slow(&self, x: u32) -> u32 {
        self.gate.notified().await;
        self.done.lock().unwrap().push("slow");
        x
    }
    #[step(after = start)]
    async fn f1(&self, x: u32) -> u32 {
        self.done.lock().unwrap().push("f1");
        x + 1
    }
    #[step(after = f1)]
    async fn f2(&self, x: u32) -> u32 {
        self.done.lock().unwrap().push("f2");
        x + 1
    }
    #[step(after = f2)]
    async fn f3(&self, x: u32) -> u32 {
        self.done.lock().unwrap().push("f3");
        self.gate.notify_one();
        x + 1
    }
    #[step(after = [slow, f3])]
    async fn join(&self, slow: u32, fast: u32) -> (u32, u32) {
        (slow, fast)
    }
}

#[tokio::test]
async fn fast_path_finishes_while_slow_step_is_still_running() {
    let wf = Eager {
        gate: Arc::new(Notify::new()),
        done: log(),
    };
    let done = wf.done.clone();
    let out = tokio::time::timeout(DEADLOCK, Engine::in_memory().run(&wf, 1))
        .await
        .expect("deadlock: the fast path did not run while `slow` was in flight")
        .unwrap();
    assert_eq!(out, (1, 4));
    assert_eq!(take(&done), ["f1", "f2", "f3", "slow"]);
}

// ---------------------------------------------------------------------------------------------
// 12. Engine is Clone; many concurrent runs on a multi-thread runtime
// ---------------------------------------------------------------------------------------------

struct Busy {
    seed: u64,
}

#[workflow]
impl Busy {
    #[step]
    async fn ids(&self, ctx: &StepContext, n: u64) -> Vec<u64> {
        let _ = ctx.run_id();
        (0..n % 7 + 1).map(|i| n * 100 + i).collect()
    }
    #[step(after = ids, for_each, concurrency = 3)]
    async fn work(&self, x: u64) -> u64 {
        yields(mix(self.seed ^ x) % 6).await;
        x * 2
    }
    #[step(after = ids)]
    async fn count(&self, ctx: &StepContext, ids: Vec<u64>) -> (usize, String) {
        yields(mix(self.seed) % 6).await;
        (ids.len(), ctx.run_id().to_string())
    }
    #[step(after = [work, count])]
    async fn total(&self, doubled: Vec<u64>, count: (usize, String)) -> (u64, usize, String) {
        (doubled.iter().sum(), count.0, count.1)
    }
}

fn assert_engine_traits<T: Clone + Send + Sync + 'static>() {}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_runs_on_cloned_engines_all_succeed() {
    assert_engine_traits::<Engine>();
    let engine = Engine::in_memory();
    let handles: Vec<_> = (0..100u64)
        .map(|n| {
            let engine = engine.clone();
            tokio::spawn(async move { (n, engine.run(&Busy { seed: n }, n).await) })
        })
        .collect();
    let mut run_ids = std::collections::BTreeSet::new();
    for handle in handles {
        let (n, result) = tokio::time::timeout(DEADLOCK, handle)
            .await
            .unwrap()
            .unwrap();
        let (sum, count, run_id) = result.unwrap();
        let items: Vec<u64> = (0..n % 7 + 1).map(|i| n * 100 + i).collect();
        assert_eq!(count, items.len(), "run {n}");
        assert_eq!(sum, items.iter().map(|x| x * 2).sum::<u64>(), "run {n}");
        assert!(run_ids.insert(run_id), "run ids are unique");
    }
    assert_eq!(run_ids.len(), 100);
}

// ---------------------------------------------------------------------------------------------
// Known bug: a terminal `for_each` step
// ---------------------------------------------------------------------------------------------

/// BUG (see report): a `for_each` step that is the workflow's output step does not compile.
/// Downstream steps receive `Vec<O>`, so the workflow's `Output` must be `Vec<O>` too, but the
/// macro declares `type Output = O` (the per-item type) and the expansion fails with
/// "expected `O`, found `Vec<O>`" pointing at `#[workflow]`.
///
/// Compiled through trybuild from a file written at test time (so that this test file itself
/// keeps compiling while the bug exists).
#[test]
fn for_each_step_can_be_the_output() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("semantics_known_bugs");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("for_each_terminal.rs");
    std::fs::write(
        &file,
        r#"
use workflow_core::prelude::*;

struct Lengths;

#[workflow]
impl Lengths {
    #[step]
    async fn split(&self, text: String) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }
    #[step(after = split, for_each, concurrency = 2)]
    async fn measure(&self, word: String) -> usize {
        word.len()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let out: Vec<usize> = Engine::in_memory().run(&Lengths, "a bb ccc".to_string()).await.unwrap();
    assert_eq!(out, vec![1, 2, 3]);
}
"#,
    )
    .unwrap();
    trybuild::TestCases::new().pass(&file);
}
