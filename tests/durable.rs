//! Durable runs on SQLite: the guarantees of `workflow_core::durable` (DESIGN.md section 5),
//! each checked against a real store file.
//!
//! Crashes are simulated in-process: the task running `engine.execute(..)` is aborted while a
//! step hangs, the engine is dropped, and a fresh engine opens the same file. Step invocations
//! are counted with atomics held by the workflow value, so "never run again" is checked
//! directly. Every wait on a background run is bounded, so a hang fails the test instead of
//! blocking it.

#[path = "common/temp_db.rs"]
mod temp_db;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use temp_db::TempDb;

use sqlx::{Connection, SqliteConnection};
use tokio::sync::Notify;
use workflow_core::prelude::*;
use workflow_core::serde::{Deserialize, Serialize};
use workflow_core::store::{JournalRecord, RunFilter, StoreError};
use workflow_core::JournalEvent;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A plain SQLite connection to `db` (no workflow store), for tampering.
async fn raw_connection(db: &TempDb) -> SqliteConnection {
    let url = format!("sqlite://{}?mode=rwc", db.display());
    SqliteConnection::connect(&url)
        .await
        .expect("open the file with sqlx")
}

/// Polls `check` until it holds; panics after 30 s of real time (with paused tokio time,
/// tokio's clock races ahead while the store's threads work, so it cannot bound the wait).
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting until {what}");
}

async fn until_status(engine: &DurableEngine, id: &RunId, status: RunStatus) {
    until(&format!("run {id} is {status:?}"), || async {
        matches!(engine.status(id).await, Ok(r) if r.summary.status == status)
    })
    .await;
}

/// Waits until the run waits for signal `name` (parked, or in the memory of `execute`).
async fn until_waiting(engine: &DurableEngine, id: &RunId, name: &str) {
    until(&format!("run {id} waits for `{name}`"), || async {
        matches!(engine.status(id).await, Ok(r) if r.summary.waiting_for.as_deref() == Some(name))
    })
    .await;
}

/// Waits for a background run's result, bounded.
async fn wait_for<W: workflow_core::Durable>(
    engine: &DurableEngine,
    id: &RunId,
) -> Result<W::Output, WorkflowError> {
    tokio::time::timeout(Duration::from_secs(30), engine.wait::<W>(id))
        .await
        .unwrap_or_else(|_| panic!("run {id} did not finish"))
}

/// Journal records of one kind (`step`, `item`, `wait`, `signal`, `timeout`, `stopped`,
/// `compensated`).
fn count(journal: &[JournalRecord], kind: &str) -> usize {
    journal.iter().filter(|r| r.event.kind() == kind).count()
}

/// Runs of the store with this status.
async fn runs_with(
    engine: &DurableEngine,
    status: RunStatus,
) -> Vec<workflow_core::store::RunSummary> {
    let filter = RunFilter {
        status: Some(status),
        ..RunFilter::default()
    };
    engine.list(&filter).await.expect("list runs").runs
}

/// A comparable copy of a journal.
fn snapshot(journal: &[JournalRecord]) -> Vec<JournalRecord> {
    journal.to_vec()
}

fn json(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

#[path = "common/step_log.rs"]
mod step_log;
use step_log::Log;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(crate = "workflow_core::serde")]
struct Approval {
    by: String,
    approved: bool,
}

fn approval(by: &str) -> Approval {
    Approval {
        by: by.to_owned(),
        approved: true,
    }
}

fn describe(amount: u32, signal: Signal<Approval>) -> String {
    match signal {
        Signal::Received(a) if a.approved => format!("{amount} approved by {}", a.by),
        Signal::Received(a) => format!("{amount} rejected by {}", a.by),
        Signal::TimedOut => format!("{amount} timed out"),
    }
}

// ---------------------------------------------------------------------------------------------
// Workflows
// ---------------------------------------------------------------------------------------------

/// Three steps in a chain; counts every step invocation.
#[derive(Clone, Default)]
struct Chain {
    calls: Arc<AtomicUsize>,
}

#[workflow]
impl Chain {
    #[step]
    async fn parse(&self, text: String) -> u32 {
        self.calls.fetch_add(1, SeqCst);
        text.len() as u32
    }
    #[step(after = parse)]
    async fn double(&self, n: u32) -> u64 {
        self.calls.fetch_add(1, SeqCst);
        u64::from(n) * 2
    }
    #[step(after = double)]
    async fn render(&self, n: u64) -> String {
        self.calls.fetch_add(1, SeqCst);
        format!("doubled: {n}")
    }
}

/// Counters and switches of [`Crashy`].
#[derive(Default)]
struct CrashState {
    fetch: AtomicUsize,
    enrich: AtomicUsize,
    store: AtomicUsize,
    /// While set, `store` hangs forever (the "crash" point).
    hang: AtomicBool,
    /// Notified when `store` starts hanging.
    reached: Notify,
}

/// Three steps; the third hangs while `hang` is set.
#[derive(Clone, Default)]
struct Crashy(Arc<CrashState>);

#[workflow]
impl Crashy {
    #[step]
    async fn fetch(&self, n: u32) -> u32 {
        self.0.fetch.fetch_add(1, SeqCst);
        n + 1
    }
    #[step(after = fetch)]
    async fn enrich(&self, n: u32) -> Vec<u32> {
        self.0.enrich.fetch_add(1, SeqCst);
        (0..n).collect()
    }
    #[step(after = enrich)]
    async fn store(&self, items: Vec<u32>) -> String {
        self.0.store.fetch_add(1, SeqCst);
        if self.0.hang.load(SeqCst) {
            self.0.reached.notify_one();
            std::future::pending::<()>().await;
        }
        format!(
            "stored {} items summing {}",
            items.len(),
            items.iter().sum::<u32>()
        )
    }
}

/// Counters and switches of [`Batch`].
#[derive(Default)]
struct BatchState {
    items: AtomicUsize,
    per_item: [AtomicUsize; 20],
    /// Items from this index on hang forever.
    hang_from: AtomicUsize,
}

/// A `for_each` over `0..n` with concurrency 4.
#[derive(Clone)]
struct Batch(Arc<BatchState>);

#[workflow]
impl Batch {
    #[step]
    async fn items(&self, n: u32) -> Vec<u32> {
        self.0.items.fetch_add(1, SeqCst);
        (0..n).collect()
    }
    #[step(after = items, for_each, concurrency = 4)]
    async fn process(&self, x: u32) -> u64 {
        self.0.per_item[x as usize].fetch_add(1, SeqCst);
        if x as usize >= self.0.hang_from.load(SeqCst) {
            std::future::pending::<()>().await;
        }
        u64::from(x) * 10
    }
    #[step(after = process)]
    async fn total(&self, results: Vec<u64>) -> u64 {
        results.iter().sum()
    }
}

/// Waits for signal `approval`; `prepare` waits for `gate` first, when there is one.
#[derive(Clone, Default)]
struct Approve {
    gate: Option<Arc<Notify>>,
    decided: Arc<AtomicUsize>,
}

#[workflow]
impl Approve {
    #[step]
    async fn prepare(&self, amount: u32) -> u32 {
        if let Some(gate) = &self.gate {
            gate.notified().await;
        }
        amount
    }
    #[step(after = prepare)]
    async fn decide(&self, amount: u32, approval: Signal<Approval>) -> String {
        self.decided.fetch_add(1, SeqCst);
        describe(amount, approval)
    }
}

/// Waits at most an hour for signal `approval`.
#[derive(Clone)]
struct Deadline;

#[workflow]
impl Deadline {
    #[step]
    async fn prepare(&self, amount: u32) -> u32 {
        amount
    }
    #[step(after = prepare, deadline = "1h")]
    async fn decide(&self, amount: u32, approval: Signal<Approval>) -> String {
        describe(amount, approval)
    }
}

/// Receives signal `approval`, then hangs while `hang` is set (a crash after consumption).
#[derive(Clone, Default)]
struct HangAfterSignal {
    hang: Arc<AtomicBool>,
    reached: Arc<Notify>,
}

#[workflow]
impl HangAfterSignal {
    #[step]
    async fn prepare(&self, amount: u32) -> u32 {
        amount
    }
    #[step(after = prepare)]
    async fn decide(&self, amount: u32, approval: Signal<Approval>) -> String {
        if self.hang.load(SeqCst) {
            self.reached.notify_one();
            std::future::pending::<()>().await;
        }
        describe(amount, approval)
    }
}

/// Version 1 of workflow `Expense`.
#[derive(Clone, Default)]
struct ExpenseV1 {
    calls: Arc<AtomicUsize>,
}

#[workflow(name = "Expense")]
impl ExpenseV1 {
    #[step]
    async fn prepare(&self, amount: u32) -> u32 {
        self.calls.fetch_add(1, SeqCst);
        amount
    }
    #[step(after = prepare)]
    async fn decide(&self, amount: u32, approval: Signal<Approval>) -> String {
        self.calls.fetch_add(1, SeqCst);
        describe(amount, approval)
    }
}

/// Version 2 of workflow `Expense`: a new deployment with an extra step.
#[derive(Clone, Default)]
struct ExpenseV2 {
    calls: Arc<AtomicUsize>,
}

#[workflow(name = "Expense", version = 2)]
impl ExpenseV2 {
    #[step]
    async fn prepare(&self, amount: u32) -> u32 {
        self.calls.fetch_add(1, SeqCst);
        amount
    }
    #[step(after = prepare)]
    async fn audit(&self, amount: u32) -> u32 {
        self.calls.fetch_add(1, SeqCst);
        amount
    }
    #[step(after = audit)]
    async fn decide(&self, amount: u32, approval: Signal<Approval>) -> String {
        self.calls.fetch_add(1, SeqCst);
        describe(amount, approval)
    }
}

/// Counters and switches of [`Canary`].
#[derive(Default)]
struct CanaryState {
    mint: AtomicUsize,
    measure: AtomicUsize,
    finish: AtomicUsize,
    hang: AtomicBool,
    reached: Notify,
}

/// Its first step's output holds a distinctive string, to find it in the database file.
#[derive(Clone, Default)]
struct Canary(Arc<CanaryState>);

const CANARY: &str = "CANARY-1234";

#[workflow]
impl Canary {
    #[step]
    async fn mint(&self, n: u32) -> String {
        self.0.mint.fetch_add(1, SeqCst);
        format!("{CANARY} #{n}")
    }
    #[step(after = mint)]
    async fn measure(&self, text: String) -> usize {
        self.0.measure.fetch_add(1, SeqCst);
        text.len()
    }
    #[step(after = measure)]
    async fn finish(&self, len: usize) -> String {
        self.0.finish.fetch_add(1, SeqCst);
        if self.0.hang.load(SeqCst) {
            self.0.reached.notify_one();
            std::future::pending::<()>().await;
        }
        format!("{len} bytes")
    }
}

/// Two saga steps, then a wait for signal `approval`.
#[derive(Clone, Default)]
struct Trip {
    log: Log,
}

#[workflow]
impl Trip {
    #[saga_step(compensation = cancel_hotel)]
    async fn book_hotel(&self, city: String) -> String {
        self.log.push("book hotel");
        format!("hotel in {city}")
    }
    #[saga_step(after = book_hotel, compensation = cancel_flight)]
    async fn book_flight(&self, hotel: String) -> String {
        self.log.push("book flight");
        format!("{hotel}, flight")
    }
    #[step(after = book_flight)]
    async fn confirm(&self, booking: String, approval: Signal<Approval>) -> String {
        self.log.push("confirm");
        format!("{booking}: {}", describe(0, approval))
    }
    async fn cancel_hotel(&self, _hotel: String) {
        self.log.push("cancel hotel");
    }
    async fn cancel_flight(&self, _flight: String) {
        self.log.push("cancel flight");
    }
}

/// Runs `execute` of a fresh run in a task, waits for `reached`, then aborts the task: the
/// in-process equivalent of killing the process while a step is in flight.
async fn crash_while<W>(
    engine: &DurableEngine,
    workflow: W,
    id: &RunId,
    input: W::Input,
    reached: impl Future<Output = ()>,
) where
    W: workflow_core::Durable + Send + Sync + 'static,
    W::Input: 'static,
    W::Output: 'static,
{
    let task = tokio::spawn({
        let (engine, id) = (engine.clone(), id.clone());
        async move {
            engine
                .execute(&workflow, id, Some(input), RunOptions::default())
                .await
        }
    });
    tokio::time::timeout(Duration::from_secs(30), reached)
        .await
        .expect("the run reaches its crash point");
    task.abort();
    match task.await {
        Err(aborted) => assert!(aborted.is_cancelled()),
        Ok(_) => panic!("the run finished before the crash"),
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Completion, stored record and journal; executing a finished run again
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_run_completes_on_sqlite_and_executing_it_again_returns_the_stored_result() {
    let db = TempDb::new("complete");
    let engine = Engine::sqlite(&db).await.unwrap();
    let wf = Chain::default();
    let id = RunId::from("chain-1");

    let first = engine
        .execute(
            &wf,
            id.clone(),
            Some("hello".to_owned()),
            RunOptions::default(),
        )
        .await;
    assert_eq!(first.result.unwrap(), "doubled: 10");
    assert_eq!(wf.calls.load(SeqCst), 3);
    assert_eq!(first.history.path, ["parse", "double", "render"]);
    assert!(first.history.restored.is_empty());

    let record = engine.status(&id).await.unwrap();
    assert_eq!(record.summary.run_id, id);
    assert_eq!(record.summary.status, RunStatus::Completed);
    assert_eq!(record.summary.workflow, "Chain");
    assert_eq!(record.summary.version, 1);
    assert_eq!(record.summary.definition_hash, Chain::definition().hash);
    assert_eq!(record.input, json("\"hello\""));
    assert_eq!(record.output, Some(json("\"doubled: 10\"")));
    assert_eq!(record.error, None);
    assert_eq!(record.summary.waiting_for, None);

    let journal = engine.journal(&id).await.unwrap();
    let expected = [
        ("parse", "5"),
        ("double", "10"),
        ("render", "\"doubled: 10\""),
    ];
    assert_eq!(journal.len(), expected.len(), "{journal:?}");
    for (i, (record, (step, payload))) in journal.iter().zip(expected).enumerate() {
        assert_eq!(record.seq, i as u64);
        assert_eq!(
            record.event,
            JournalEvent::StepCompleted {
                step: step.to_owned(),
                output: json(payload)
            }
        );
    }
    let completed: Vec<RunId> = runs_with(&engine, RunStatus::Completed)
        .await
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(completed, std::slice::from_ref(&id));
    for status in [RunStatus::Ready, RunStatus::Claimed, RunStatus::Waiting] {
        assert!(runs_with(&engine, status).await.is_empty());
    }

    // The id is an idempotency key: the stored result comes back and no step runs; the same
    // id with another input is a conflict, never silently ignored.
    let conflict = engine
        .execute(
            &wf,
            id.clone(),
            Some("another".to_owned()),
            RunOptions::default(),
        )
        .await;
    assert!(matches!(
        conflict.result,
        Err(WorkflowError::InputConflict { .. })
    ));
    let again = engine
        .execute(
            &wf,
            id.clone(),
            Some("hello".to_owned()),
            RunOptions::default(),
        )
        .await;
    assert_eq!(again.result.unwrap(), "doubled: 10");
    assert_eq!(
        wf.calls.load(SeqCst),
        3,
        "executing a finished run ran steps"
    );
    assert!(again.history.path.is_empty());

    // Likewise after a restart, and through `wait`.
    drop(engine);
    let engine = Engine::sqlite(&db).await.unwrap();
    let again = engine
        .execute(&wf, id.clone(), None, RunOptions::default())
        .await;
    assert_eq!(again.result.unwrap(), "doubled: 10");
    assert_eq!(engine.wait::<Chain>(&id).await.unwrap(), "doubled: 10");
    assert_eq!(
        wf.calls.load(SeqCst),
        3,
        "executing a finished run ran steps"
    );
    assert_eq!(
        engine.journal(&id).await.unwrap().len(),
        3,
        "the journal grew"
    );

    // `run` makes a new run each time.
    assert_eq!(
        engine.run(&wf, "abc".to_owned()).await.unwrap(),
        "doubled: 6"
    );
    assert_eq!(wf.calls.load(SeqCst), 6);
    assert_eq!(
        engine.list(&RunFilter::default()).await.unwrap().runs.len(),
        2
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Idempotent start with a caller-chosen id
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn starting_the_same_id_twice_runs_the_workflow_once() {
    let db = TempDb::new("idempotent");
    let engine = Engine::sqlite(&db).await.unwrap();
    let wf = Chain::default();

    let first = engine
        .start_with_id(&wf, "order-42", "hello".to_owned())
        .await
        .unwrap()
        .id()
        .clone();
    let second = engine
        .start_with_id(&wf, "order-42", "hello".to_owned())
        .await
        .unwrap()
        .id()
        .clone();
    assert!(matches!(
        engine
            .start_with_id(&wf, "order-42", "another input".to_owned())
            .await,
        Err(WorkflowError::InputConflict { .. })
    ));
    assert_eq!(first, second);
    assert_eq!(first.as_str(), "order-42");
    assert_eq!(
        wait_for::<Chain>(&engine, &first).await.unwrap(),
        "doubled: 10"
    );
    assert_eq!(wf.calls.load(SeqCst), 3, "the steps ran more than once");

    // Once more after the end, from a fresh engine: nothing starts.
    drop(engine);
    let engine = Engine::sqlite(&db).await.unwrap();
    let third = engine
        .start_with_id(&wf, "order-42", "hello".to_owned())
        .await
        .unwrap()
        .id()
        .clone();
    assert_eq!(third, first);
    assert_eq!(
        wait_for::<Chain>(&engine, &third).await.unwrap(),
        "doubled: 10"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(wf.calls.load(SeqCst), 3, "the steps ran more than once");
    assert_eq!(
        engine.list(&RunFilter::default()).await.unwrap().runs.len(),
        1
    );
    assert_eq!(engine.journal(&first).await.unwrap().len(), 3);
}

// ---------------------------------------------------------------------------------------------
// 3. Resume after a crash
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_crashed_run_resumes_without_running_committed_steps_again() {
    let db = TempDb::new("crash");
    let state = Arc::new(CrashState::default());
    state.hang.store(true, SeqCst);
    let id = RunId::from("crash-1");

    let engine = Engine::sqlite(&db).await.unwrap();
    crash_while(
        &engine,
        Crashy(state.clone()),
        &id,
        4,
        state.reached.notified(),
    )
    .await;
    // What the crash left: an unfinished run with two committed results (still claimed, or
    // already given back by the dropped drive's guard).
    let status = engine.status(&id).await.unwrap().summary.status;
    assert!(
        matches!(status, RunStatus::Claimed | RunStatus::Ready),
        "{status:?}"
    );
    let journal = engine.journal(&id).await.unwrap();
    assert_eq!(count(&journal, "step"), 2, "{journal:?}");
    drop(engine);

    state.hang.store(false, SeqCst);
    let engine = Engine::sqlite(&db).await.unwrap();
    let finished = engine.resume(&Crashy(state.clone()), &id).await;
    assert_eq!(finished.result.unwrap(), "stored 5 items summing 10");
    assert_eq!(
        state.fetch.load(SeqCst),
        1,
        "committed step `fetch` ran again"
    );
    assert_eq!(
        state.enrich.load(SeqCst),
        1,
        "committed step `enrich` ran again"
    );
    assert_eq!(
        state.store.load(SeqCst),
        2,
        "the step in flight at the crash runs again"
    );
    assert_eq!(finished.history.restored, ["fetch", "enrich"]);
    assert_eq!(
        engine.status(&id).await.unwrap().summary.status,
        RunStatus::Completed
    );
    let journal = engine.journal(&id).await.unwrap();
    assert_eq!(count(&journal, "step"), 3, "{journal:?}");
    let steps: Vec<&str> = journal.iter().filter_map(|r| r.event.step()).collect();
    assert_eq!(
        steps,
        ["fetch", "enrich", "store"],
        "each result is journaled once"
    );
}

#[tokio::test]
async fn a_crashed_for_each_reruns_only_the_unfinished_items() {
    let db = TempDb::new("for-each-crash");
    let state = Arc::new(BatchState::default());
    state.hang_from.store(8, SeqCst);
    let id = RunId::from("batch-1");

    let engine = Engine::sqlite(&db).await.unwrap();
    let committed = async {
        // `items` and items 0..8 commit; items 8..12 hang (concurrency 4), 12.. never start.
        until("9 results are journaled", || async {
            engine.journal(&id).await.map(|j| j.len()).unwrap_or(0) >= 9
        })
        .await;
    };
    crash_while(&engine, Batch(state.clone()), &id, 20, committed).await;
    assert_eq!(engine.journal(&id).await.unwrap().len(), 9);
    for x in 0..20 {
        let expected = usize::from(x < 12);
        assert_eq!(
            state.per_item[x].load(SeqCst),
            expected,
            "item {x} before the crash"
        );
    }
    drop(engine);

    state.hang_from.store(usize::MAX, SeqCst);
    let engine = Engine::sqlite(&db).await.unwrap();
    let finished = engine.resume(&Batch(state.clone()), &id).await;
    assert_eq!(
        finished.result.unwrap(),
        (0..20u64).map(|x| x * 10).sum::<u64>()
    );
    assert_eq!(
        state.items.load(SeqCst),
        1,
        "committed step `items` ran again"
    );
    for x in 0..20 {
        let expected = if (8..12).contains(&x) { 2 } else { 1 };
        assert_eq!(
            state.per_item[x].load(SeqCst),
            expected,
            "item {x}: invocations"
        );
    }
    let mut restored = vec!["items"];
    restored.extend(["process"; 8]);
    assert_eq!(finished.history.restored, restored);

    // Each item's result is journaled exactly once.
    let journal = engine.journal(&id).await.unwrap();
    let mut items: Vec<u64> = journal
        .iter()
        .filter_map(|r| match &r.event {
            JournalEvent::ItemCompleted { step, item, .. } if step == "process" => Some(*item),
            _ => None,
        })
        .collect();
    items.sort_unstable();
    assert_eq!(items, (0..20).collect::<Vec<u64>>());
    assert_eq!(journal.len(), 22, "{journal:?}");
}

/// `recover` resumes every interrupted run of the workflow in the background.
#[tokio::test]
async fn recover_resumes_interrupted_runs_in_the_background() {
    let db = TempDb::new("recover");
    let state = Arc::new(CrashState::default());
    state.hang.store(true, SeqCst);
    let id = RunId::from("crash-recover");
    let engine = Engine::sqlite(&db).await.unwrap();
    crash_while(
        &engine,
        Crashy(state.clone()),
        &id,
        2,
        state.reached.notified(),
    )
    .await;
    drop(engine);

    state.hang.store(false, SeqCst);
    let engine = Engine::sqlite(&db).await.unwrap();
    let recovery = engine.recover(&Crashy(state.clone())).await.unwrap();
    assert_eq!(recovery.resumed, std::slice::from_ref(&id));
    assert!(recovery.refused.is_empty());
    assert_eq!(
        wait_for::<Crashy>(&engine, &id).await.unwrap(),
        "stored 3 items summing 3"
    );
    assert_eq!(
        (
            state.fetch.load(SeqCst),
            state.enrich.load(SeqCst),
            state.store.load(SeqCst)
        ),
        (1, 1, 2)
    );
    // Nothing left to recover.
    let recovery = engine.recover(&Crashy(state.clone())).await.unwrap();
    assert!(recovery.resumed.is_empty());
}

/// A run whose `execute` future is dropped (a caller's timeout, an aborted task) no longer
/// executes: the same engine must be able to recover it (`recover` skips only runs "executing
/// in this engine"), and `cancel` must say it is not executing here.
#[tokio::test]
async fn a_dropped_execute_leaves_the_run_recoverable_by_the_same_engine() {
    let db = TempDb::new("dropped");
    let state = Arc::new(CrashState::default());
    state.hang.store(true, SeqCst);
    let id = RunId::from("dropped-1");
    let engine = Engine::sqlite(&db).await.unwrap();
    crash_while(
        &engine,
        Crashy(state.clone()),
        &id,
        2,
        state.reached.notified(),
    )
    .await;
    state.hang.store(false, SeqCst);

    let recovery = engine.recover(&Crashy(state.clone())).await.unwrap();
    assert_eq!(
        recovery.resumed,
        std::slice::from_ref(&id),
        "the dropped run was not recovered"
    );
    assert_eq!(
        wait_for::<Crashy>(&engine, &id).await.unwrap(),
        "stored 3 items summing 3"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Signals
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_signal_sent_before_the_wait_is_kept_and_consumed() {
    let db = TempDb::new("signal-early");
    let engine = Engine::sqlite(&db).await.unwrap();
    let gate = Arc::new(Notify::new());
    let wf = Approve {
        gate: Some(gate.clone()),
        ..Approve::default()
    };
    let id = engine.start(&wf, 100).await.unwrap().id().clone();
    engine
        .handle::<Approve>(id.clone())
        .signal(Approve::signals().approval, approval("ann"))
        .await
        .unwrap();
    // `prepare` is held at the gate: the signal step has not been reached.
    let record = engine.status(&id).await.unwrap();
    assert!(!record.summary.status.is_finished(), "{record:?}");
    assert_eq!(wf.decided.load(SeqCst), 0);
    gate.notify_one();

    assert_eq!(
        wait_for::<Approve>(&engine, &id).await.unwrap(),
        "100 approved by ann"
    );
    let journal = engine.journal(&id).await.unwrap();
    assert_eq!(count(&journal, "signal"), 1, "{journal:?}");
    let consumed = journal.iter().find_map(|r| match &r.event {
        JournalEvent::SignalConsumed { step, payload } => Some((step.as_str(), payload.clone())),
        _ => None,
    });
    assert_eq!(
        consumed,
        Some(("decide", json(r#"{"by":"ann","approved":true}"#)))
    );
    assert_eq!(wf.decided.load(SeqCst), 1);
}

#[tokio::test]
async fn of_two_signals_the_step_consumes_exactly_one() {
    let db = TempDb::new("signal-twice");
    let engine = Engine::sqlite(&db).await.unwrap();
    let gate = Arc::new(Notify::new());
    let wf = Approve {
        gate: Some(gate.clone()),
        ..Approve::default()
    };
    let id = engine.start(&wf, 7).await.unwrap().id().clone();
    engine
        .handle::<Approve>(id.clone())
        .signal(Approve::signals().approval, approval("first"))
        .await
        .unwrap();
    engine
        .handle::<Approve>(id.clone())
        .signal(Approve::signals().approval, approval("second"))
        .await
        .unwrap();
    gate.notify_one();

    assert_eq!(
        wait_for::<Approve>(&engine, &id).await.unwrap(),
        "7 approved by first"
    );
    assert_eq!(wf.decided.load(SeqCst), 1);
    let journal = engine.journal(&id).await.unwrap();
    assert_eq!(count(&journal, "signal"), 1, "{journal:?}");

    // A finished run takes no more signals.
    match engine
        .handle::<Approve>(id.clone())
        .signal(Approve::signals().approval, approval("late"))
        .await
    {
        Err(WorkflowError::Store {
            error:
                StoreError::RunFinished {
                    run_id,
                    status,
                    signal,
                },
            ..
        }) => {
            assert_eq!(run_id, id);
            assert_eq!(status, RunStatus::Completed);
            assert_eq!(signal, "approval");
        }
        other => panic!("expected RunFinished, got {other:?}"),
    }
    // Nor does a run that does not exist.
    let unknown = RunId::from("no-such-run");
    match engine
        .handle::<Approve>(unknown.clone())
        .signal(Approve::signals().approval, approval("x"))
        .await
    {
        Err(WorkflowError::Store {
            error: StoreError::UnknownRun(run_id),
            ..
        }) => assert_eq!(run_id, unknown),
        other => panic!("expected UnknownRun, got {other:?}"),
    }
    assert_eq!(count(&engine.journal(&id).await.unwrap(), "signal"), 1);
}

#[tokio::test]
async fn a_waiting_run_is_listed_as_waiting_for_its_signal() {
    let db = TempDb::new("signal-wait");
    let engine = Engine::sqlite(&db).await.unwrap();
    let wf = Approve::default();
    let id = engine.start(&wf, 3).await.unwrap().id().clone();
    until_status(&engine, &id, RunStatus::Waiting).await;

    let record = engine.status(&id).await.unwrap();
    assert_eq!(record.summary.waiting_for.as_deref(), Some("approval"));
    let waiting: Vec<RunId> = runs_with(&engine, RunStatus::Waiting)
        .await
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(waiting, std::slice::from_ref(&id));
    let journal = engine.journal(&id).await.unwrap();
    assert_eq!(count(&journal, "wait"), 1, "{journal:?}");
    assert_eq!(count(&journal, "signal"), 0, "{journal:?}");

    // A signal of another name does not end the wait.
    engine
        .store()
        .send_signal(
            &id,
            "rejection",
            serde_json::to_vec(&approval("bob")).unwrap(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        engine.status(&id).await.unwrap().summary.status,
        RunStatus::Waiting
    );
    assert_eq!(wf.decided.load(SeqCst), 0);

    engine
        .handle::<Approve>(id.clone())
        .signal(Approve::signals().approval, approval("cy"))
        .await
        .unwrap();
    assert_eq!(
        wait_for::<Approve>(&engine, &id).await.unwrap(),
        "3 approved by cy"
    );
    let record = engine.status(&id).await.unwrap();
    assert_eq!(record.summary.status, RunStatus::Completed);
    assert_eq!(record.summary.waiting_for, None);
}

/// The signal consumption is journaled: a crash after it replays the same signal and does
/// not consume another one.
#[tokio::test]
async fn a_signal_consumed_before_a_crash_is_replayed_not_consumed_again() {
    let db = TempDb::new("signal-crash");
    let wf = HangAfterSignal::default();
    wf.hang.store(true, SeqCst);
    let id = RunId::from("signal-crash-1");
    let engine = Engine::sqlite(&db).await.unwrap();
    let reached = wf.reached.clone();
    let sender = engine.clone();
    let signalled_id = id.clone();
    let reached = async move {
        until_waiting(&sender, &signalled_id, "approval").await;
        sender
            .handle::<HangAfterSignal>(signalled_id.clone())
            .signal(HangAfterSignal::signals().approval, approval("first"))
            .await
            .unwrap();
        reached.notified().await;
    };
    crash_while(&engine, wf.clone(), &id, 5, reached).await;
    engine
        .handle::<HangAfterSignal>(id.clone())
        .signal(HangAfterSignal::signals().approval, approval("second"))
        .await
        .unwrap();
    drop(engine);

    wf.hang.store(false, SeqCst);
    let engine = Engine::sqlite(&db).await.unwrap();
    let finished = engine.resume(&wf, &id).await;
    assert_eq!(finished.result.unwrap(), "5 approved by first");
    let journal = engine.journal(&id).await.unwrap();
    assert_eq!(count(&journal, "signal"), 1, "{journal:?}");
}

// ---------------------------------------------------------------------------------------------
// 5. Deadlines
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_wait_past_its_deadline_gets_timed_out() {
    let db = TempDb::new("deadline");
    let real = std::time::Instant::now();
    let engine = Engine::sqlite(&db).await.unwrap();
    let started = tokio::time::Instant::now();
    let id = RunId::from("deadline-1");
    let finished = engine
        .execute(&Deadline, id.clone(), Some(9), RunOptions::default())
        .await;
    assert_eq!(finished.result.unwrap(), "9 timed out");
    // The deadline is wall-clock based (it survives restarts), so the few real milliseconds
    // between the wait's start and its timer count against it.
    assert!(
        started.elapsed() >= Duration::from_secs(3590),
        "ended after {:?}",
        started.elapsed()
    );
    assert!(
        real.elapsed() < Duration::from_secs(60),
        "took {:?} of real time",
        real.elapsed()
    );
    let journal = engine.journal(&id).await.unwrap();
    assert_eq!(count(&journal, "timeout"), 1, "{journal:?}");
    assert_eq!(count(&journal, "signal"), 0, "{journal:?}");
}

/// In real time: with paused time, tokio's clock jumps to the next timer whenever the
/// runtime waits for the store's threads, so "before the deadline" cannot be arranged.
#[tokio::test]
async fn a_signal_within_the_deadline_is_received() {
    let db = TempDb::new("deadline-ok");
    let engine = Engine::sqlite(&db).await.unwrap();
    let id = engine.start(&Deadline, 4).await.unwrap().id().clone();
    until_status(&engine, &id, RunStatus::Waiting).await;
    engine
        .handle::<Deadline>(id.clone())
        .signal(Deadline::signals().approval, approval("dee"))
        .await
        .unwrap();
    assert_eq!(
        wait_for::<Deadline>(&engine, &id).await.unwrap(),
        "4 approved by dee"
    );
    let journal = engine.journal(&id).await.unwrap();
    assert_eq!(count(&journal, "signal"), 1, "{journal:?}");
    assert_eq!(count(&journal, "timeout"), 0, "{journal:?}");
}

// ---------------------------------------------------------------------------------------------
// 6. Version mismatch
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_run_resumes_only_under_the_definition_it_started_with() {
    assert_ne!(ExpenseV1::definition().hash, ExpenseV2::definition().hash);
    let db = TempDb::new("version");
    let v1 = ExpenseV1::default();
    let v2 = ExpenseV2::default();
    let id = RunId::from("expense-1");

    let engine = Engine::sqlite(&db).await.unwrap();
    let waiting = async {
        until_waiting(&engine, &id, "approval").await;
    };
    crash_while(&engine, v1.clone(), &id, 50, waiting).await;
    drop(engine);

    // A new deployment: version 2 of `Expense`.
    let engine = Engine::sqlite(&db).await.unwrap();
    let before = snapshot(&engine.journal(&id).await.unwrap());
    let check = |error: &WorkflowError| match error {
        WorkflowError::VersionMismatch {
            workflow,
            run_id,
            stored_version,
            stored_hash,
            current_version,
            current_hash,
            ..
        } => {
            assert_eq!(*workflow, "Expense");
            assert_eq!(run_id, &id);
            assert_eq!(*stored_version, 1);
            assert_eq!(*stored_hash, ExpenseV1::definition().hash);
            assert_eq!(*current_version, 2);
            assert_eq!(*current_hash, ExpenseV2::definition().hash);
            let message = error.to_string();
            assert!(
                message.contains("version 1") && message.contains("version 2"),
                "{message}"
            );
        }
        other => panic!("expected VersionMismatch, got {other}"),
    };
    let finished = engine.resume(&v2, &id).await;
    check(&finished.result.unwrap_err());
    assert!(finished.history.path.is_empty());
    check(&engine.start_with_id(&v2, id.clone(), 50).await.unwrap_err());
    let recovery = engine.recover(&v2).await.unwrap();
    assert!(recovery.resumed.is_empty(), "{:?}", recovery.resumed);
    assert_eq!(recovery.refused.len(), 1);
    check(&recovery.refused[0]);
    tokio::time::sleep(Duration::from_millis(50)).await;

    // The run is untouched.
    assert_eq!(
        v2.calls.load(SeqCst),
        0,
        "version 2 ran steps of a version 1 run"
    );
    // Left for a worker that has version 1: claimable, never claimed by version 2.
    let record = engine.status(&id).await.unwrap();
    assert_eq!(record.summary.status, RunStatus::Ready);
    assert_eq!(record.summary.owner, None);
    assert_eq!(record.summary.waiting_for.as_deref(), Some("approval"));
    assert_eq!(record.summary.version, 1);
    assert_eq!(
        snapshot(&engine.journal(&id).await.unwrap()),
        before,
        "the journal changed"
    );

    // A run id of another workflow is refused too.
    match engine.resume(&Approve::default(), &id).await.result {
        Err(WorkflowError::WrongWorkflow {
            workflow,
            run_id,
            found,
        }) => {
            assert_eq!(
                (workflow, run_id, found.as_str()),
                ("Approve", id.clone(), "Expense")
            );
        }
        other => panic!("expected WrongWorkflow, got {other:?}"),
    }

    // The deployment it started with can still finish it.
    let recovery = engine.recover(&v1).await.unwrap();
    assert_eq!(recovery.resumed, std::slice::from_ref(&id));
    engine
        .handle::<ExpenseV1>(id.clone())
        .signal(ExpenseV1::signals().approval, approval("eve"))
        .await
        .unwrap();
    assert_eq!(
        wait_for::<ExpenseV1>(&engine, &id).await.unwrap(),
        "50 approved by eve"
    );
    assert_eq!(
        v1.calls.load(SeqCst),
        2,
        "prepare once before the restart, decide once after"
    );
}

// ---------------------------------------------------------------------------------------------
// 7. A corrupt journal record
// ---------------------------------------------------------------------------------------------

/// Byte offsets of `needle` in `haystack`.
fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

#[tokio::test]
async fn a_corrupt_journal_record_is_reported_and_nothing_runs_again() {
    let db = TempDb::new("corrupt");
    let state = Arc::new(CanaryState::default());
    state.hang.store(true, SeqCst);
    let id = RunId::from("corrupt-1");
    let engine = Engine::sqlite(&db).await.unwrap();
    crash_while(
        &engine,
        Canary(state.clone()),
        &id,
        1,
        state.reached.notified(),
    )
    .await;
    assert_eq!(engine.journal(&id).await.unwrap().len(), 2);
    drop(engine);

    // Move everything into the main file, so the flipped byte is read (a flipped byte in
    // the WAL fails the WAL's own frame checksum, and SQLite drops the frame: a torn write).
    let mut raw = raw_connection(&db).await;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut raw)
        .await
        .unwrap();
    raw.close().await.unwrap();
    let wal = std::fs::read(db.sidecar("-wal")).unwrap_or_default();
    assert!(
        find_all(&wal, CANARY.as_bytes()).is_empty(),
        "the canary is still in the WAL"
    );
    let mut bytes = std::fs::read(&db).unwrap();
    let hits = find_all(&bytes, CANARY.as_bytes());
    assert!(!hits.is_empty(), "the canary is not in the database file");
    for at in hits {
        // "CANARY-1234" -> "CANARY-9234": still valid JSON, only the checksum can tell.
        bytes[at + 7] = b'9';
    }
    std::fs::write(&db, &bytes).unwrap();

    state.hang.store(false, SeqCst);
    let engine = Engine::sqlite(&db).await.unwrap();
    let finished = engine.resume(&Canary(state.clone()), &id).await;
    match &finished.result {
        Err(WorkflowError::Store {
            workflow,
            run_id,
            error:
                StoreError::Corrupt {
                    run_id: corrupt_run,
                    seq,
                    detail,
                },
        }) => {
            assert_eq!(*workflow, "Canary");
            assert_eq!(run_id, &id);
            assert_eq!(corrupt_run, &id);
            assert_eq!(*seq, Some(0), "the first record holds the canary");
            assert!(detail.contains("checksum"), "{detail}");
        }
        other => panic!("expected a Corrupt store error, got {other:?}"),
    }
    assert_eq!(
        (
            state.mint.load(SeqCst),
            state.measure.load(SeqCst),
            state.finish.load(SeqCst)
        ),
        (1, 1, 1),
        "a step ran again after the corruption"
    );
    assert!(finished.history.path.is_empty());
    assert!(matches!(
        engine.journal(&id).await,
        Err(StoreError::Corrupt { .. })
    ));
    // The run is left unfinished, for an operator (given back to the store, not failed).
    assert_eq!(
        engine.status(&id).await.unwrap().summary.status,
        RunStatus::Ready
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Concurrent signals
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_waiting_runs_signalled_concurrently_all_complete() {
    let db = TempDb::new("hundred");
    let engine = Engine::sqlite(&db).await.unwrap();
    let wf = Approve::default();
    let mut ids = Vec::new();
    for amount in 0..100u32 {
        ids.push(engine.start(&wf, amount).await.unwrap().id().clone());
    }
    until("all 100 runs wait", || async {
        runs_with(&engine, RunStatus::Waiting).await.len() == 100
    })
    .await;

    let senders: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let (engine, id) = (engine.clone(), id.clone());
            tokio::spawn(async move {
                engine
                    .handle::<Approve>(id.clone())
                    .signal(Approve::signals().approval, approval(&format!("user-{i}")))
                    .await
            })
        })
        .collect();
    for sender in senders {
        sender.await.unwrap().unwrap();
    }
    for (i, id) in ids.iter().enumerate() {
        let out = wait_for::<Approve>(&engine, id).await.unwrap();
        assert_eq!(out, format!("{i} approved by user-{i}"));
        let journal = engine.journal(id).await.unwrap();
        assert_eq!(count(&journal, "signal"), 1, "run {i}: {journal:?}");
    }
    assert_eq!(wf.decided.load(SeqCst), 100);
    assert_eq!(runs_with(&engine, RunStatus::Completed).await.len(), 100);
}

// ---------------------------------------------------------------------------------------------
// 9. Files that are not (usable) stores
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_file_that_is_not_a_store_is_refused_untouched() {
    let db = TempDb::new("garbage");
    // Pseudo-random bytes (xorshift), 8 KiB.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let garbage: Vec<u8> = (0..8192)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&db, &garbage).unwrap();
    match Engine::sqlite(&db).await {
        Err(StoreError::NotAStore { location, detail }) => {
            assert!(location.contains("garbage"), "{location}");
            assert!(!detail.is_empty());
        }
        Err(other) => panic!("expected NotAStore, got {other:?}"),
        Ok(_) => panic!("random bytes opened as a store"),
    }
    assert_eq!(
        std::fs::read(&db).unwrap(),
        garbage,
        "the file was modified"
    );

    let text = TempDb::new("text");
    std::fs::write(&text, "name,amount\nann,3\n".repeat(100)).unwrap();
    assert!(matches!(
        Engine::sqlite(&text).await,
        Err(StoreError::NotAStore { .. })
    ));
}

#[tokio::test]
async fn an_sqlite_database_of_another_application_is_refused() {
    let db = TempDb::new("other-app");
    let mut raw = raw_connection(&db).await;
    sqlx::query("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        .execute(&mut raw)
        .await
        .unwrap();
    raw.close().await.unwrap();

    match Engine::sqlite(&db).await {
        Err(StoreError::NotAStore { detail, .. }) => {
            assert!(detail.contains("customers"), "{detail}")
        }
        Err(other) => panic!("expected NotAStore, got {other:?}"),
        Ok(_) => panic!("another application's database opened as a store"),
    }
    let mut raw = raw_connection(&db).await;
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&mut raw)
            .await
            .unwrap();
    assert_eq!(
        tables,
        ["customers"],
        "the store added tables to another application's database"
    );
    raw.close().await.unwrap();
}

#[tokio::test]
async fn a_store_with_a_newer_schema_is_refused() {
    let db = TempDb::new("newer");
    let engine = Engine::sqlite(&db).await.unwrap();
    engine.run(&Chain::default(), "x".to_owned()).await.unwrap();
    drop(engine);

    let mut raw = raw_connection(&db).await;
    let changed = sqlx::query("UPDATE wf_meta SET value = 99 WHERE key = 'schema_version'")
        .execute(&mut raw)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 1);
    raw.close().await.unwrap();

    match Engine::sqlite(&db).await {
        Err(
            error @ StoreError::NewerSchema {
                found, supported, ..
            },
        ) => {
            assert_eq!(found, 99);
            assert_eq!(supported, 4);
            assert!(error.to_string().contains("upgrade"), "{error}");
        }
        Err(other) => panic!("expected NewerSchema, got {other:?}"),
        Ok(_) => panic!("a newer schema opened"),
    }
}

// ---------------------------------------------------------------------------------------------
// 10. Cancelling a waiting run
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn cancelling_a_waiting_run_compensates_its_saga_steps() {
    let db = TempDb::new("cancel");
    let engine = Engine::sqlite(&db).await.unwrap();
    let wf = Trip::default();
    let id = engine
        .start(&wf, "Oslo".to_owned())
        .await
        .unwrap()
        .id()
        .clone();
    until_status(&engine, &id, RunStatus::Waiting).await;

    assert_eq!(engine.cancel(&id).await.unwrap(), RunStatus::Waiting);
    let error = wait_for::<Trip>(&engine, &id).await.unwrap_err();
    assert!(error.to_string().contains("cancelled"), "{error}");
    assert_eq!(
        wf.log.entries(),
        ["book hotel", "book flight", "cancel flight", "cancel hotel"]
    );
    let record = engine.status(&id).await.unwrap();
    assert_eq!(record.summary.status, RunStatus::Cancelled);
    assert_eq!(record.summary.waiting_for, None);
    assert!(
        record
            .error
            .as_deref()
            .is_some_and(|e| e.contains("cancelled")),
        "{record:?}"
    );
    let journal = engine.journal(&id).await.unwrap();
    assert_eq!(count(&journal, "stopped"), 1, "{journal:?}");
    assert_eq!(count(&journal, "compensated"), 2, "{journal:?}");
    assert_eq!(count(&journal, "signal"), 0, "{journal:?}");

    // It is over: no more cancels or signals, and executing it again compensates nothing.
    assert_eq!(engine.cancel(&id).await.unwrap(), RunStatus::Cancelled);
    assert!(matches!(
        engine.cancel(&RunId::from("no-such-run")).await,
        Err(StoreError::UnknownRun(_))
    ));
    assert!(matches!(
        engine
            .handle::<Trip>(id.clone())
            .signal(Trip::signals().approval, approval("late"))
            .await,
        Err(WorkflowError::Store {
            error: StoreError::RunFinished {
                status: RunStatus::Cancelled,
                ..
            },
            ..
        })
    ));
    drop(engine);
    let engine = Engine::sqlite(&db).await.unwrap();
    assert!(engine.resume(&wf, &id).await.result.is_err());
    assert_eq!(wf.log.entries().len(), 4, "{:?}", wf.log.entries());
}

// ---------------------------------------------------------------------------------------------
// 11. A long retry backoff parks the run
// ---------------------------------------------------------------------------------------------

#[derive(Default, Clone)]
struct Flaky {
    attempts: Arc<AtomicUsize>,
}

#[workflow]
impl Flaky {
    #[step(retry = 2, backoff = "6s")]
    async fn call(&self, ctx: &StepContext, n: u32) -> Result<u32, StepError> {
        self.attempts.fetch_add(1, SeqCst);
        if ctx.attempt() == 1 {
            Err(StepError::msg("the service is down"))
        } else {
            Ok(n * 2)
        }
    }
}

#[tokio::test]
async fn a_long_retry_backoff_parks_the_run_and_the_retry_runs_when_due() {
    let db = TempDb::new("retry-park");
    let engine = Engine::sqlite(&db).await.unwrap();
    let wf = Flaky::default();
    let id = engine.start(&wf, 21).await.unwrap().id().clone();
    until_status(&engine, &id, RunStatus::Waiting).await;
    let parked = engine.status(&id).await.unwrap().summary;
    assert_eq!(parked.owner, None, "a parked run holds no claim");
    assert_eq!(parked.waiting_for.as_deref(), Some("retry of `call`"));
    assert!(parked.wake_at.is_some());
    assert_eq!(wf.attempts.load(SeqCst), 1);
    let journal = engine.journal(&id).await.unwrap();
    assert!(matches!(
        &journal[..],
        [JournalRecord {
            event: JournalEvent::RetryScheduled { attempt: 2, .. },
            ..
        }]
    ));
    assert_eq!(wait_for::<Flaky>(&engine, &id).await.unwrap(), 42);
    assert_eq!(wf.attempts.load(SeqCst), 2, "the retry ran once, when due");
}

// ---------------------------------------------------------------------------------------------
// Overlapping commits: a run goes on while its outputs are being committed
// ---------------------------------------------------------------------------------------------

/// Holds the answer to the append of step `held`'s output (not its other records) until `release` is notified, and
/// notifies `holding` when it starts holding; logs when the held commit is answered.
struct HoldCommit {
    held: &'static str,
    holding: Arc<Notify>,
    release: Arc<Notify>,
    log: Arc<Mutex<Vec<String>>>,
}

impl hooked_store::Hooks for HoldCommit {
    fn hold_append(
        &self,
        records: &[JournalRecord],
    ) -> Option<futures::future::BoxFuture<'static, ()>> {
        let output_of_held =
            |r: &JournalRecord| r.event.kind() == "step" && r.event.step() == Some(self.held);
        if !records.iter().any(output_of_held) {
            return None;
        }
        let (holding, release, log) =
            (self.holding.clone(), self.release.clone(), self.log.clone());
        let held = self.held;
        Some(Box::pin(async move {
            holding.notify_one();
            release.notified().await;
            log.lock().unwrap().push(format!("{held} committed"));
        }))
    }
}

#[path = "common/hooked_store.rs"]
mod hooked_store;

/// The engine over `db` whose commit of `held`'s output is answered only once `release` is
/// notified.
async fn holding_engine(db: &TempDb, hold: HoldCommit) -> DurableEngine {
    let inner = workflow_core::store::SqliteStore::open(&db)
        .await
        .expect("open the store");
    DurableEngine::new(hooked_store::Hooked { inner, hooks: hold })
}

/// `begin` -> `slow_commit` -> `after_commit`, and `begin` -> `other`; `other` runs only once
/// `slow_commit`'s commit is being held, and releases it.
#[derive(Clone)]
struct Overlap {
    holding: Arc<Notify>,
    release: Arc<Notify>,
    log: Arc<Mutex<Vec<String>>>,
}

#[workflow]
impl Overlap {
    #[step]
    async fn begin(&self, n: u32) -> u32 {
        n
    }

    #[step(after = begin)]
    async fn slow_commit(&self, n: u32) -> u32 {
        n + 1
    }

    #[step(after = slow_commit)]
    async fn after_commit(&self, n: u32) -> u32 {
        self.log.lock().unwrap().push("after_commit started".into());
        n + 1
    }

    #[step(after = begin)]
    async fn other(&self, n: u32) -> u32 {
        // Runs while `slow_commit`'s output is still being committed: a scheduler that awaited
        // that commit before polling anything else never gets here, and the run hangs.
        self.holding.notified().await;
        self.log.lock().unwrap().push("other ran".into());
        self.release.notify_one();
        n * 10
    }

    #[step(after = [after_commit, other])]
    async fn end(&self, a: u32, b: u32) -> u32 {
        a + b
    }
}

#[tokio::test]
async fn a_run_goes_on_while_an_output_commits_and_hands_it_on_only_once_committed() {
    let db = TempDb::new("overlap");
    let (holding, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let log = Arc::new(Mutex::new(Vec::new()));
    let hold = HoldCommit {
        held: "slow_commit",
        holding: holding.clone(),
        release: release.clone(),
        log: log.clone(),
    };
    let engine = holding_engine(&db, hold).await;
    let wf = Overlap {
        holding,
        release,
        log: log.clone(),
    };
    let run = tokio::time::timeout(Duration::from_secs(30), engine.run(&wf, 1))
        .await
        .expect("the run goes on while an output is being committed");
    assert_eq!(run.unwrap(), 3 + 10);
    assert_eq!(
        *log.lock().unwrap(),
        ["other ran", "slow_commit committed", "after_commit started"],
        "the held output went downstream only once committed"
    );
}

/// A saga step whose commit is still in flight when a parallel step fails for good.
#[derive(Clone)]
struct LateSaga {
    holding: Arc<Notify>,
    release: Arc<Notify>,
    refunded: Arc<AtomicBool>,
}

#[workflow]
impl LateSaga {
    #[step]
    async fn begin(&self, n: u32) -> u32 {
        n
    }

    #[saga_step(after = begin, compensation = refund)]
    async fn charge(&self, n: u32) -> u32 {
        n
    }

    async fn refund(&self, _charged: u32) {
        self.refunded.store(true, SeqCst);
    }

    #[step(after = begin)]
    async fn fail(&self, _n: u32) -> Result<u32, StepError> {
        self.holding.notified().await;
        self.release.notify_one();
        Err(StepError::permanent(StepError::msg("declined")))
    }

    #[step(after = [charge, fail])]
    async fn end(&self, a: u32, b: u32) -> u32 {
        a + b
    }
}

#[tokio::test]
async fn a_saga_step_still_committing_when_the_run_stops_is_compensated() {
    let db = TempDb::new("late-saga");
    let (holding, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let hold = HoldCommit {
        held: "charge",
        holding: holding.clone(),
        release: release.clone(),
        log: Arc::default(),
    };
    let engine = holding_engine(&db, hold).await;
    let wf = LateSaga {
        holding,
        release,
        refunded: Arc::default(),
    };
    let run = tokio::time::timeout(Duration::from_secs(30), engine.run(&wf, 1))
        .await
        .expect("the run ends");
    let error = run.expect_err("`fail` fails the run");
    assert_eq!(error.report().unwrap().compensated(), ["charge"]);
    assert!(
        wf.refunded.load(SeqCst),
        "the committed charge was refunded"
    );
}

/// Counts the appends of `work`'s items as they are queued, and holds the answer to the first
/// one's until `release` is notified.
struct CountItems {
    queued: Arc<AtomicUsize>,
    release: Arc<Notify>,
}

impl hooked_store::Hooks for CountItems {
    fn hold_append(
        &self,
        records: &[JournalRecord],
    ) -> Option<futures::future::BoxFuture<'static, ()>> {
        if !records.iter().any(|r| r.event.kind() == "item") {
            return None;
        }
        if self.queued.fetch_add(1, SeqCst) > 0 {
            return None;
        }
        let release = self.release.clone();
        Some(Box::pin(async move { release.notified().await }))
    }
}

/// `items` -> `work` (`for_each`, no concurrency limit) -> `join`: the benches' workload.
#[path = "../workflow-core/benches/common/fan_out.rs"]
mod fan_out;

#[tokio::test]
async fn a_run_queues_at_most_256_commits_so_the_stores_other_writes_do_not_wait_behind_it() {
    let db = TempDb::new("commit-cap");
    let (queued, release) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
    let hooks = CountItems {
        queued: queued.clone(),
        release: release.clone(),
    };
    let inner = workflow_core::store::SqliteStore::open(&db)
        .await
        .expect("open the store");
    let engine = DurableEngine::new(hooked_store::Hooked { inner, hooks });
    let run = tokio::spawn({
        let engine = engine.clone();
        async move { engine.run(&fan_out::FanOut, 1000).await }
    });
    // Every item finishes at once; while the first item's commit is held, the run takes no
    // more results than its cap (scheduler::commits::MAX_IN_FLIGHT).
    until("256 item commits are queued", || async {
        queued.load(SeqCst) >= 256
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(queued.load(SeqCst), 256, "more commits queued past the cap");
    release.notify_one();
    let total = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the run finishes")
        .unwrap();
    assert_eq!(total.unwrap(), (1..=1000).sum::<u64>());
    assert_eq!(queued.load(SeqCst), 1000, "one commit per item");
}

/// `list` -> `each` (`for_each` over an empty list: it completes at launch, with no record of
/// its own) and `list` -> `other`; `first` takes whichever of them finished first. `first`
/// hangs in its first run, for the crash.
#[derive(Clone, Default)]
struct EmptyRace {
    hang: Arc<AtomicBool>,
    reached: Arc<Notify>,
}

#[workflow]
impl EmptyRace {
    #[step]
    async fn list(&self, _n: u32) -> Vec<u32> {
        Vec::new()
    }

    #[step(after = list, for_each)]
    async fn each(&self, x: u32) -> u32 {
        x
    }

    #[step(after = list)]
    async fn other(&self, _items: Vec<u32>) -> Vec<u32> {
        vec![99]
    }

    #[step(after = any(each, other))]
    async fn first(&self, items: Vec<u32>) -> String {
        if self.hang.load(SeqCst) {
            self.reached.notify_one();
            std::future::pending::<()>().await;
        }
        format!("{items:?}")
    }
}

#[tokio::test]
async fn an_empty_for_each_wins_the_same_any_join_after_a_crash() {
    let db = TempDb::new("empty-race");
    let wf = EmptyRace::default();
    wf.hang.store(true, SeqCst);
    let id = RunId::from("empty-race-1");
    let engine = Engine::sqlite(&db).await.unwrap();
    // Live, `each` completes the moment it launches, before `other` ran: it wins `first`.
    // The crash comes once `first` runs and `other`'s output is committed too.
    let reached = async {
        wf.reached.notified().await;
        until("`other` is committed", || async {
            let journal = engine.journal(&id).await.unwrap();
            journal.iter().any(|r| r.event.step() == Some("other"))
        })
        .await;
    };
    crash_while(&engine, wf.clone(), &id, 1, reached).await;
    let journal = engine.journal(&id).await.unwrap();
    let steps: Vec<_> = journal.iter().filter_map(|r| r.event.step()).collect();
    assert_eq!(steps, ["list", "other"], "{journal:?}");
    drop(engine);

    wf.hang.store(false, SeqCst);
    let engine = Engine::sqlite(&db).await.unwrap();
    let resumed = engine.resume(&wf, &id).await;
    assert_eq!(
        resumed.result.unwrap(),
        "[]",
        "the replay picked another winner than the run did"
    );
}
