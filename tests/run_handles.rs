//! One verb set on every engine: `start` returns a `RunHandle<W>` (wait, status, cancel, typed
//! and untyped signals), `handle::<W>(id)` reattaches; a failed run's `wait` gives the same
//! structured error as `run`, also when read back from the store by another engine.

#[path = "common/temp_db.rs"]
mod temp_db;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;
use temp_db::TempDb;

use workflow_core::prelude::*;
use workflow_core::serde::{Deserialize, Serialize};
use workflow_core::store::{SqliteStore, StoreError};
use workflow_core::EngineEvent;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(crate = "workflow_core::serde")]
enum Decision {
    Approve,
    Reject { reason: String },
}

/// Submits an amount, then waits for a manager's `decision`.
#[derive(Clone)]
struct Expense;

#[workflow]
impl Expense {
    #[step]
    async fn submit(&self, amount: u32) -> u32 {
        amount
    }

    #[step(after = submit)]
    async fn decide(&self, amount: u32, decision: Signal<Decision>) -> String {
        match decision.received() {
            Some(Decision::Approve) => format!("paid {amount}"),
            Some(Decision::Reject { reason }) => format!("rejected: {reason}"),
            None => "timed out".into(),
        }
    }
}

/// A saga: `reserve` (undone by `release`), then `ship`, which fails for good.
#[derive(Clone, Default)]
struct Checkout {
    released: Arc<AtomicUsize>,
}

#[workflow]
impl Checkout {
    #[saga_step(compensation = release)]
    async fn reserve(&self, order: u32) -> u32 {
        order
    }

    #[step(after = reserve, retry = 1, backoff = "1ms")]
    async fn ship(&self, order: u32) -> Result<String, StepError> {
        Err(StepError::msg(format!("carrier refused order {order}")))
    }

    async fn release(&self, _order: u32) {
        self.released.fetch_add(1, SeqCst);
    }
}

fn temp_db(name: &str) -> TempDb {
    TempDb::new(&format!("run-handles-{name}"))
}

async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish"))
}

/// Polls until the run waits for its signal.
async fn until_waiting<W: Workflow>(run: &RunHandle<W>) {
    within("the wait", async {
        while run.status().await.unwrap() != RunStatus::Waiting {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn in_memory_runs_take_typed_signals_through_their_handle() {
    let engine = Engine::in_memory();
    let run = engine.start(&Expense, 120).await.unwrap();
    until_waiting(&run).await;
    run.signal(Expense::signals().decision, Decision::Approve)
        .await
        .unwrap();
    assert_eq!(within("wait", run.wait()).await.unwrap(), "paid 120");
    assert_eq!(run.status().await.unwrap(), RunStatus::Completed);

    // A signal sent before the wait is kept; a handle found by id reaches the same run.
    let run = engine.start_with_id(&Expense, "e-2", 7).await.unwrap();
    let again = engine.handle::<Expense>("e-2");
    let reject = Decision::Reject {
        reason: "no receipt".into(),
    };
    again
        .signal(Expense::signals().decision, reject)
        .await
        .unwrap();
    assert_eq!(
        within("wait", run.wait()).await.unwrap(),
        "rejected: no receipt"
    );
    // Its output was moved out once.
    assert!(matches!(
        again.wait().await,
        Err(WorkflowError::OutputTaken { .. })
    ));

    let unknown = engine.handle::<Expense>("nobody");
    assert!(matches!(
        unknown.status().await,
        Err(WorkflowError::Store {
            error: StoreError::UnknownRun(_),
            ..
        })
    ));
}

#[tokio::test]
async fn cancelling_an_in_memory_run_compensates_it() {
    #[derive(Clone, Default)]
    struct Hold {
        undone: Arc<AtomicUsize>,
    }

    #[workflow]
    impl Hold {
        #[saga_step(compensation = undo)]
        async fn book(&self, n: u32) -> u32 {
            n
        }

        #[step(after = book)]
        async fn wait_forever(&self, n: u32, go: Signal<u32>) -> u32 {
            n + go.received().unwrap_or(0)
        }

        async fn undo(&self, _n: u32) {
            self.undone.fetch_add(1, SeqCst);
        }
    }

    let engine = Engine::in_memory();
    let wf = Hold::default();
    let run = engine.start(&wf, 1).await.unwrap();
    until_waiting(&run).await;
    run.cancel().await.unwrap();
    match within("wait", run.wait()).await {
        Err(WorkflowError::Cancelled { report, .. }) => {
            assert_eq!(report.compensated(), ["book"]);
        }
        other => panic!("expected Cancelled, got {other:?}"),
    }
    assert_eq!(wf.undone.load(SeqCst), 1);
    assert_eq!(run.status().await.unwrap(), RunStatus::Cancelled);
}

#[tokio::test]
async fn the_untyped_entry_point_refuses_bad_signals_before_storing_them() {
    let path = temp_db("untyped");
    let engine = Engine::sqlite(&path).await.unwrap();
    let run = engine.start(&Expense, 300).await.unwrap();
    until_waiting(&run).await;

    match run
        .signal_json("decison", &serde_json::json!("Approve"))
        .await
    {
        Err(WorkflowError::UnknownSignal { signal, known, .. }) => {
            assert_eq!(signal, "decison");
            assert_eq!(known, ["decision"]);
        }
        other => panic!("expected UnknownSignal, got {other:?}"),
    }
    match run.signal_json("decision", &serde_json::json!(42)).await {
        Err(WorkflowError::BadSignal { signal, .. }) => assert_eq!(signal, "decision"),
        other => panic!("expected BadSignal, got {other:?}"),
    }
    // Nothing bad was stored: the run still waits, and a correct signal finishes it.
    assert_eq!(run.status().await.unwrap(), RunStatus::Waiting);
    run.signal_json("decision", &serde_json::json!("Approve"))
        .await
        .unwrap();
    assert_eq!(within("wait", run.wait()).await.unwrap(), "paid 300");
}

#[tokio::test]
async fn wait_on_a_failed_durable_run_gives_the_same_error_as_run() {
    let path = temp_db("failed");
    let engine = Engine::sqlite(&path).await.unwrap();
    let wf = Checkout::default();
    let direct = engine.run(&wf, 1).await.unwrap_err();

    let run = engine.start(&wf, 1).await.unwrap();
    let waited = within("wait", run.wait()).await.unwrap_err();
    // Another engine over the same file (nothing shared in memory) reads the same error.
    let other = DurableEngine::with_options(
        SqliteStore::open(&path).await.unwrap(),
        WorkerOptions::default().claim_runs(false),
    );
    let reread = within("wait", other.handle::<Checkout>(run.id().clone()).wait())
        .await
        .unwrap_err();

    for error in [&direct, &waited, &reread] {
        match error {
            WorkflowError::StepFailed {
                step,
                attempts,
                error,
                report,
                ..
            } => {
                assert_eq!(*step, "ship");
                assert_eq!(*attempts, 2);
                assert!(
                    error.to_string().starts_with("carrier refused order"),
                    "{error}"
                );
                assert_eq!(report.compensated(), ["reserve"]);
            }
            other => panic!("expected StepFailed, got {other:?}"),
        }
    }
    // One message, one prefix: the same text as `run` gives, the run id aside.
    let text = waited.to_string();
    assert_eq!(text.matches("workflow `Checkout`").count(), 1, "{text}");
    assert!(!text.contains("restart"), "{text}");
    assert_eq!(
        text.replace(run.id().as_str(), "ID"),
        direct.to_string().replace(direct.run_id().as_str(), "ID")
    );
    assert_eq!(wf.released.load(SeqCst), 2);
}

/// The steps named in completion events, in order.
fn completed<S: Copy>(events: &[RunEvent<S>]) -> Vec<S> {
    events
        .iter()
        .filter_map(|e| match e {
            RunEvent::StepCompleted { step, .. } => Some(*step),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn events_of_an_in_memory_run_arrive_in_order_and_match_its_history() {
    use futures::StreamExt;
    let engine = Engine::in_memory();
    let run = engine.start(&Expense, 5).await.unwrap();
    let events = run.events();
    until_waiting(&run).await;
    run.signal(Expense::signals().decision, Decision::Approve)
        .await
        .unwrap();
    let events: Vec<RunEvent<ExpenseStep>> = within("events", events.collect()).await;
    assert_eq!(
        events,
        [
            RunEvent::RunStarted,
            RunEvent::StepStarted {
                step: ExpenseStep::Submit,
                item: None,
                attempt: 1
            },
            RunEvent::StepCompleted {
                step: ExpenseStep::Submit,
                duration: events.iter().find_map(|e| match e {
                    RunEvent::StepCompleted {
                        step: ExpenseStep::Submit,
                        duration,
                    } => *duration,
                    _ => None,
                })
            },
            RunEvent::WaitingForSignal {
                step: ExpenseStep::Decide,
                signal: "decision"
            },
            RunEvent::SignalReceived {
                step: ExpenseStep::Decide,
                signal: "decision",
                timed_out: false
            },
            RunEvent::StepStarted {
                step: ExpenseStep::Decide,
                item: None,
                attempt: 1
            },
            RunEvent::StepCompleted {
                step: ExpenseStep::Decide,
                duration: events.iter().rev().find_map(|e| match e {
                    RunEvent::StepCompleted { duration, .. } => *duration,
                    _ => None,
                })
            },
            RunEvent::RunFinished {
                status: RunStatus::Completed,
                error: None
            },
        ]
    );
    let history = run.history().await.unwrap();
    let names: Vec<&str> = completed(&events).iter().map(|s| s.name()).collect();
    assert_eq!(history.path, names);
    // A late observer sees the same events from the start.
    let again: Vec<RunEvent<ExpenseStep>> = within("events", run.events().collect()).await;
    assert_eq!(again, events);
}

#[tokio::test]
async fn a_durable_run_is_followed_and_drawn_from_another_engine() {
    use futures::StreamExt;
    let path = temp_db("follow");
    let engine = Engine::sqlite(&path).await.unwrap();
    let wf = Checkout::default();
    let run = engine.start_with_id(&wf, "checkout-9", 9).await.unwrap();

    // Another engine over the same file follows the run through the store.
    let other = DurableEngine::with_options(
        SqliteStore::open(&path).await.unwrap(),
        WorkerOptions::default().claim_runs(false),
    );
    let followed = other.handle::<Checkout>("checkout-9");
    let events: Vec<RunEvent<CheckoutStep>> = within("events", followed.events().collect()).await;
    assert_eq!(events.first(), Some(&RunEvent::RunStarted));
    assert_eq!(completed(&events), [CheckoutStep::Reserve]);
    assert!(events.contains(&RunEvent::Compensated {
        step: CheckoutStep::Reserve,
        failed: false
    }));
    match events.last() {
        Some(RunEvent::RunFinished {
            status: RunStatus::Failed,
            error: Some(error),
        }) => assert!(error.contains("step `ship` failed"), "{error}"),
        other => panic!("expected the run's end, got {other:?}"),
    }

    let history = followed.history().await.unwrap();
    assert_eq!(history.path, ["reserve"]);
    let reserve = history.step("reserve").unwrap();
    assert_eq!(reserve.outcome, StepOutcome::Completed);
    assert_eq!(reserve.output, Some(serde_json::json!(9)));
    assert_eq!(history.step("ship").unwrap().outcome, StepOutcome::Failed);
    assert_eq!(history.compensated, ["reserve"]);
    let mermaid = history.to_mermaid(Checkout::definition());
    assert!(mermaid.contains("class ship failed"), "{mermaid}");
    assert!(mermaid.contains("class reserve compensated"), "{mermaid}");
    let dot = history.to_dot(Checkout::definition());
    assert!(
        dot.contains("ship [style=filled, fillcolor=\"#fee2e2\", xlabel=\"failed\"]"),
        "{dot}"
    );
    assert!(run.wait().await.is_err());
    // A typed signal of another workflow is refused, not stored.
    let wrong = other
        .handle::<Expense>("checkout-9")
        .signal(Expense::signals().decision, Decision::Approve)
        .await;
    assert!(
        matches!(wrong, Err(WorkflowError::WrongWorkflow { .. })),
        "{wrong:?}"
    );
}

/// The events of one run on an engine's feed, step names as they arrived.
fn feed_of(events: &[EngineEvent], run: &RunId) -> Vec<RunEvent<&'static str>> {
    events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Run { run_id, event, .. } if run_id == run => Some(event.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn an_engine_feed_carries_the_events_of_all_its_runs() {
    use futures::StreamExt;
    let engine = Engine::in_memory();
    let mut feed = engine.events();
    let wf = Checkout::default();
    let a = engine.start(&wf, 1).await.unwrap();
    let b = engine.start(&Expense, 2).await.unwrap();
    until_waiting(&b).await;
    b.signal(Expense::signals().decision, Decision::Approve)
        .await
        .unwrap();
    let _ = a.wait().await;
    b.wait().await.unwrap();
    let mut seen = Vec::new();
    while feed_of(&seen, a.id())
        .last()
        .is_none_or(|e| !matches!(e, RunEvent::RunFinished { .. }))
        || feed_of(&seen, b.id())
            .last()
            .is_none_or(|e| !matches!(e, RunEvent::RunFinished { .. }))
    {
        seen.push(within("feed", feed.next()).await.unwrap());
    }
    let typed: Vec<RunEvent<ExpenseStep>> = b.events().collect().await;
    let named: Vec<RunEvent<&str>> = typed
        .into_iter()
        .map(|e| e.map_step(|s| s.name()))
        .collect();
    assert_eq!(
        feed_of(&seen, b.id()),
        named,
        "the feed and the run's own stream agree"
    );
    assert!(feed_of(&seen, a.id()).contains(&RunEvent::Compensated {
        step: "reserve",
        failed: false
    }));

    // A durable worker's feed: the runs it executes.
    let path = temp_db("feed");
    let durable = Engine::sqlite(&path).await.unwrap();
    let mut feed = durable.events();
    let run = durable.start(&Expense, 3).await.unwrap();
    until_waiting(&run).await;
    run.signal(Expense::signals().decision, Decision::Approve)
        .await
        .unwrap();
    run.wait().await.unwrap();
    let mut seen = Vec::new();
    while !feed_of(&seen, run.id())
        .iter()
        .any(|e| matches!(e, RunEvent::RunFinished { .. }))
    {
        seen.push(within("feed", feed.next()).await.unwrap());
    }
    let steps: Vec<&str> = feed_of(&seen, run.id())
        .iter()
        .filter_map(|e| match e {
            RunEvent::StepCompleted { step, .. } => Some(*step),
            _ => None,
        })
        .collect();
    assert_eq!(steps, ["submit", "decide"]);
}

#[path = "common/postgres_schema.rs"]
mod postgres_schema;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_run_is_followed_and_its_error_read_back_from_another_engine() {
    use futures::StreamExt;
    let Some(url) = postgres_schema::postgres_store("handles").await else {
        return;
    };
    let engine = Engine::postgres(&url).await.unwrap();
    let wf = Checkout::default();
    let run = engine.start_with_id(&wf, "checkout-pg", 5).await.unwrap();
    let other = DurableEngine::with_options(
        workflow_core::store::PostgresStore::connect(&url)
            .await
            .unwrap(),
        WorkerOptions::default().claim_runs(false),
    );
    let followed = other.handle::<Checkout>("checkout-pg");
    let events: Vec<RunEvent<CheckoutStep>> = within("events", followed.events().collect()).await;
    assert_eq!(completed(&events), [CheckoutStep::Reserve]);
    match within("wait", followed.wait()).await {
        Err(WorkflowError::StepFailed { step, report, .. }) => {
            assert_eq!(step, "ship");
            assert_eq!(report.compensated(), ["reserve"]);
        }
        other => panic!("expected StepFailed, got {other:?}"),
    }
    assert!(run.wait().await.is_err());
}
