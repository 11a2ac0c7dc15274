//! Child workflows as steps of the graph (`#[step(after = draft, workflow = Summarize)]`): typed
//! edges, nested histories and events, the parent's cancel and deadline reaching the child, a
//! completed child undone as a unit by the parent's saga, a retry starting a new child, mocks
//! of a child's steps from the parent's harness; in memory and on SQLite.

#[path = "common/temp_db.rs"]
mod temp_db;
use std::sync::Mutex;
use std::time::Duration;
use temp_db::TempDb;

use futures::StreamExt;
use workflow_core::prelude::*;
use workflow_core::serde::{Deserialize, Serialize};
use workflow_core::store::RunStatus;
use workflow_testkit::Harness;

#[path = "common/postgres_schema.rs"]
mod common;

// ---------------------------------------------------------------------------------------------
// A reusable child without serde: it runs in memory only.
// ---------------------------------------------------------------------------------------------

/// Not serializable: runs only in memory.
#[derive(Debug, Clone, PartialEq)]
struct Text(String);

#[derive(Default)]
struct Initials;

#[workflow]
impl Initials {
    #[step]
    async fn split(&self, text: Text) -> Vec<String> {
        text.0.split(' ').map(str::to_owned).collect()
    }
    #[step(after = split)]
    async fn shorten(&self, words: Vec<String>) -> Text {
        Text(words.iter().map(|w| &w[..1]).collect())
    }
}

#[derive(Clone)]
struct Abbreviate;

#[workflow]
impl Abbreviate {
    #[step]
    async fn draft(&self, topic: String) -> Text {
        Text(format!("{topic} is very good"))
    }
    #[step(after = draft, workflow = Initials)]
    async fn initials(&self, draft: Text) -> Text;

    #[step(after = initials)]
    async fn publish(&self, summary: Text) -> String {
        format!("[{}]", summary.0)
    }
}

#[tokio::test]
async fn a_child_step_runs_in_memory_without_serde_and_its_history_is_nested() {
    let finished = Engine::in_memory()
        .run_with(&Abbreviate, "rust".to_owned(), RunOptions::default())
        .await;
    assert_eq!(finished.result.unwrap(), "[rivg]");
    let record = finished.history.step("initials").unwrap();
    assert_eq!(record.outcome, StepOutcome::Completed);
    assert_eq!(record.children.len(), 1);
    assert_eq!(record.children[0].path, vec!["split", "shorten"]);
    assert_eq!(finished.history.path, vec!["draft", "initials", "publish"]);
}

#[tokio::test]
async fn the_parents_events_show_the_childs_steps_under_the_parent_step() {
    let engine = Engine::in_memory();
    let run = engine
        .start(&Abbreviate, "go team".to_owned())
        .await
        .unwrap();
    let events: Vec<_> = run.events().collect().await;
    assert_eq!(run.wait().await.unwrap(), "[gtivg]");
    let child: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            RunEvent::Child { step, event, .. } => Some((*step, (**event).clone())),
            _ => None,
        })
        .collect();
    assert!(
        child.contains(&(
            AbbreviateStep::Initials,
            RunEvent::StepStarted {
                step: "shorten",
                item: None,
                attempt: 1
            }
        )),
        "{child:?}"
    );
    assert!(child
        .iter()
        .all(|(step, _)| *step == AbbreviateStep::Initials));
    let started = events.iter().position(|e| {
        matches!(
            e,
            RunEvent::StepStarted {
                step: AbbreviateStep::Initials,
                ..
            }
        )
    });
    let completed = events.iter().position(|e| {
        matches!(
            e,
            RunEvent::StepCompleted {
                step: AbbreviateStep::Initials,
                ..
            }
        )
    });
    let first_child = events
        .iter()
        .position(|e| matches!(e, RunEvent::Child { .. }));
    assert!(
        started < first_child && first_child < completed,
        "{events:?}"
    );
}

#[tokio::test]
async fn the_parents_harness_mocks_one_step_of_the_child() {
    let run = Harness::new(Abbreviate)
        .mock_child(
            Abbreviate::steps().initials,
            Initials::steps().shorten,
            |(words,): (Vec<String>,)| async move { Ok(Text(format!("{} words", words.len()))) },
        )
        .run("a b c".to_owned())
        .await;
    assert_eq!(run.output(), "[6 words]");
}

#[tokio::test]
async fn the_parents_harness_mocks_the_whole_child() {
    let run = Harness::new(Abbreviate)
        .mock_value(Abbreviate::steps().initials, Text("mock".into()))
        .run("a b c".to_owned())
        .await;
    assert_eq!(run.output(), "[mock]");
}

// ---------------------------------------------------------------------------------------------
// A saga child: reserves, then confirms; its reservation is released when it is undone.
// ---------------------------------------------------------------------------------------------

/// What the step bodies did, by test key.
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn log(entry: String) {
    LOG.lock().unwrap().push(entry);
}

/// The entries of one test, without its key.
fn entries(key: &str) -> Vec<String> {
    let suffix = format!(":{key}");
    LOG.lock()
        .unwrap()
        .iter()
        .filter_map(|e| e.strip_suffix(&suffix).map(str::to_owned))
        .collect()
}

/// The status a run ends with (a child's owner writes it after its compensations ran).
async fn final_status(engine: &DurableEngine, id: &str) -> RunStatus {
    for _ in 0..1000 {
        let status = engine.status(&id.into()).await.unwrap().summary.status;
        if status.is_finished() {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{id} never finished");
}

async fn wait_for(key: &str, entry: &str) {
    for _ in 0..500 {
        if entries(key).iter().any(|e| e == entry) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("`{entry}` never logged for {key}: {:?}", entries(key));
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(crate = "workflow_core::serde")]
struct Trip {
    key: String,
    /// `confirm` fails for good in the first `failures` child runs.
    failures: usize,
    /// `confirm` hangs.
    hang: bool,
    /// The parent's `pay` fails for good.
    decline: bool,
}

impl Trip {
    fn new(key: &str) -> Self {
        Trip {
            key: key.to_owned(),
            failures: 0,
            hang: false,
            decline: false,
        }
    }
}

#[derive(Default, Clone)]
struct Booking;

#[workflow]
impl Booking {
    #[saga_step(compensation = release)]
    async fn reserve(&self, trip: Trip) -> Trip {
        log(format!("reserve:{}", trip.key));
        trip
    }
    #[step(after = reserve)]
    async fn confirm(&self, trip: Trip) -> Result<String, StepError> {
        let tried = entries(&trip.key)
            .iter()
            .filter(|e| *e == "confirm")
            .count();
        log(format!("confirm:{}", trip.key));
        if trip.hang {
            std::future::pending::<()>().await;
        }
        if tried < trip.failures {
            return Err(StepError::permanent(StepError::msg("no seats")));
        }
        Ok(format!("booked {}", trip.key))
    }
    async fn release(&self, trip: Trip) {
        log(format!("release:{}", trip.key));
    }
}

#[derive(Clone)]
struct Travel;

#[workflow]
impl Travel {
    #[step]
    async fn plan(&self, trip: Trip) -> Trip {
        trip
    }
    #[step(after = plan, workflow = Booking, retry = 1)]
    async fn book(&self, trip: Trip) -> String;

    #[step(after = [plan, book])]
    async fn pay(&self, trip: Trip, booking: String) -> Result<String, StepError> {
        log(format!("pay:{}", trip.key));
        if trip.decline {
            return Err(StepError::permanent(StepError::msg("card declined")));
        }
        Ok(format!("paid for {booking}"))
    }
}

fn temp_db(name: &str) -> TempDb {
    TempDb::new(&format!("child-steps-{name}"))
}

#[tokio::test]
async fn a_completed_child_is_undone_as_a_unit_when_the_parent_compensates() {
    let trip = Trip {
        decline: true,
        ..Trip::new("undo-mem")
    };
    let error = Engine::in_memory().run(&Travel, trip).await.unwrap_err();
    assert!(
        matches!(error, WorkflowError::StepFailed { step: "pay", .. }),
        "{error}"
    );
    assert_eq!(
        entries("undo-mem"),
        ["reserve", "confirm", "pay", "release"]
    );
    let report = error.report().unwrap();
    assert_eq!(report.compensated(), vec!["book"]);
    assert_eq!(report.compensations[0].compensation, "Booking");
}

#[tokio::test]
async fn a_completed_durable_child_is_undone_as_a_unit_when_the_parent_compensates() {
    let db = temp_db("undo");
    let engine = Engine::sqlite(&db).await.unwrap();
    let trip = Trip {
        decline: true,
        ..Trip::new("undo-sqlite")
    };
    let run = engine.start_with_id(&Travel, "trip-1", trip).await.unwrap();
    let error = run.wait().await.unwrap_err();
    assert!(
        matches!(error, WorkflowError::StepFailed { step: "pay", .. }),
        "{error}"
    );
    assert_eq!(
        entries("undo-sqlite"),
        ["reserve", "confirm", "pay", "release"]
    );
    assert_eq!(error.report().unwrap().compensated(), vec!["book"]);
    // The child is a run of its own, which completed before it was undone.
    let child = engine.status(&"~trip-1/book".into()).await.unwrap();
    assert_eq!(child.summary.status, RunStatus::Completed);
}

#[tokio::test]
async fn a_retry_of_a_child_step_starts_a_new_child_in_memory() {
    let trip = Trip {
        failures: 1,
        ..Trip::new("retry-mem")
    };
    let finished = Engine::in_memory()
        .run_with(&Travel, trip, RunOptions::default())
        .await;
    assert_eq!(finished.result.unwrap(), "paid for booked retry-mem");
    // The failed child undid its own reservation; the second one ran from the start.
    assert_eq!(
        entries("retry-mem"),
        ["reserve", "confirm", "release", "reserve", "confirm", "pay"]
    );
    let book = finished.history.step("book").unwrap();
    assert_eq!(book.attempts, 2);
    assert_eq!(book.children.len(), 2);
}

#[tokio::test]
async fn a_retry_of_a_durable_child_step_starts_a_new_child_run() {
    let db = temp_db("retry");
    let engine = Engine::sqlite(&db).await.unwrap();
    let trip = Trip {
        failures: 1,
        ..Trip::new("retry-sqlite")
    };
    let run = engine.start_with_id(&Travel, "trip-2", trip).await.unwrap();
    assert_eq!(run.wait().await.unwrap(), "paid for booked retry-sqlite");
    let first = engine.status(&"~trip-2/book".into()).await.unwrap();
    let second = engine.status(&"~trip-2/book@2".into()).await.unwrap();
    assert_eq!(first.summary.status, RunStatus::Failed);
    assert_eq!(second.summary.status, RunStatus::Completed);
    // Read back from the store, the parent's history holds both children's.
    let history = engine.handle::<Travel>("trip-2").history().await.unwrap();
    let children = &history.step("book").unwrap().children;
    assert_eq!(children.len(), 2);
    assert_eq!(
        children[0].step("confirm").unwrap().outcome,
        StepOutcome::Failed
    );
    assert_eq!(children[1].path, vec!["reserve", "confirm"]);
    assert_eq!(
        entries("retry-sqlite"),
        ["reserve", "confirm", "release", "reserve", "confirm", "pay"]
    );
}

#[tokio::test]
async fn cancelling_the_parent_cancels_the_child_which_undoes_its_saga_steps_first() {
    let engine = Engine::in_memory();
    let trip = Trip {
        hang: true,
        ..Trip::new("cancel-mem")
    };
    let run = engine.start(&Travel, trip).await.unwrap();
    wait_for("cancel-mem", "confirm").await;
    run.cancel().await.unwrap();
    let error = run.wait().await.unwrap_err();
    assert!(matches!(error, WorkflowError::Cancelled { .. }), "{error}");
    // Undone before the parent's error came back.
    assert_eq!(entries("cancel-mem"), ["reserve", "confirm", "release"]);
}

#[tokio::test]
async fn the_parents_deadline_reaches_the_child() {
    let trip = Trip {
        hang: true,
        ..Trip::new("deadline-mem")
    };
    let options = RunOptions::default().deadline(Duration::from_millis(300));
    let finished = Engine::in_memory().run_with(&Travel, trip, options).await;
    let error = finished.result.unwrap_err();
    assert!(
        matches!(error, WorkflowError::DeadlineExceeded { .. }),
        "{error}"
    );
    assert_eq!(entries("deadline-mem"), ["reserve", "confirm", "release"]);
}

#[tokio::test]
async fn cancelling_a_durable_parent_cancels_its_child_run() {
    let db = temp_db("cancel");
    let engine = Engine::sqlite(&db).await.unwrap();
    let trip = Trip {
        hang: true,
        ..Trip::new("cancel-sqlite")
    };
    let run = engine.start_with_id(&Travel, "trip-3", trip).await.unwrap();
    wait_for("cancel-sqlite", "confirm").await;
    run.cancel().await.unwrap();
    let error = run.wait().await.unwrap_err();
    assert!(matches!(error, WorkflowError::Cancelled { .. }), "{error}");
    wait_for("cancel-sqlite", "release").await;
    assert_eq!(
        final_status(&engine, "~trip-3/book").await,
        RunStatus::Cancelled
    );
}

// ---------------------------------------------------------------------------------------------
// A child per item.
// ---------------------------------------------------------------------------------------------

struct Digest;

#[workflow]
impl Digest {
    #[step]
    async fn documents(&self, text: String) -> Vec<Text> {
        text.split(", ").map(|d| Text(d.to_owned())).collect()
    }
    #[step(after = documents, for_each, workflow = Initials)]
    async fn abbreviate(&self, document: Text) -> Text;

    #[step(after = abbreviate)]
    async fn join(&self, parts: Vec<Text>) -> String {
        parts.into_iter().map(|t| t.0).collect::<Vec<_>>().join(" ")
    }
}

#[tokio::test]
async fn a_for_each_child_step_runs_one_child_per_item() {
    let finished = Engine::in_memory()
        .run_with(
            &Digest,
            "big old car, red fox".to_owned(),
            RunOptions::default(),
        )
        .await;
    assert_eq!(finished.result.unwrap(), "boc rf");
    assert_eq!(
        finished.history.step("abbreviate").unwrap().children.len(),
        2
    );
}

// ---------------------------------------------------------------------------------------------
// A child that waits for a person: its wait shows on the parent, which takes its signal.
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Review;

#[workflow]
impl Review {
    #[step]
    async fn ask(&self, amount: u32) -> u32 {
        amount
    }
    #[step(after = ask)]
    async fn decide(&self, amount: u32, approved: Signal<bool>) -> String {
        match approved.received() {
            Some(true) => format!("approved {amount}"),
            _ => format!("refused {amount}"),
        }
    }
}

#[derive(Clone)]
struct Expense;

#[workflow]
impl Expense {
    #[step]
    async fn submit(&self, amount: u32) -> u32 {
        amount
    }
    #[step(after = submit, workflow = Review)]
    async fn review(&self, amount: u32) -> String;
}

#[tokio::test]
async fn a_childs_signal_wait_shows_on_the_parent_and_takes_the_signal_through_its_handle() {
    let engine = Engine::in_memory();
    let run = engine.start(&Expense, 50).await.unwrap();
    // Too early: the child has not started yet, or it has and takes it; never lost silently.
    let mut events = run.events();
    while let Some(event) = events.next().await {
        if let RunEvent::Child { step, event, .. } = &event {
            if matches!(
                **event,
                RunEvent::WaitingForSignal {
                    signal: "approved",
                    ..
                }
            ) {
                assert_eq!(*step, ExpenseStep::Review);
                break;
            }
        }
    }
    run.signal_child(Expense::steps().review, Review::signals().approved, true)
        .await
        .unwrap();
    assert_eq!(run.wait().await.unwrap(), "approved 50");
}

#[tokio::test]
async fn a_durable_childs_signal_goes_through_the_parents_handle() {
    let db = temp_db("signal");
    let engine = Engine::sqlite(&db).await.unwrap();
    let run = engine
        .start_with_id(&Expense, "expense-1", 70)
        .await
        .unwrap();
    // The parent's history shows the child waiting under its step.
    let mut waiting = false;
    for _ in 0..500 {
        let history = run.history().await.unwrap();
        let children = &history.step("review").unwrap().children;
        if children
            .first()
            .and_then(|child| child.step("decide"))
            .is_some_and(|decide| decide.outcome == StepOutcome::Waiting)
        {
            waiting = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(waiting, "the child never showed its wait");
    run.signal_child(Expense::steps().review, Review::signals().approved, false)
        .await
        .unwrap();
    assert_eq!(run.wait().await.unwrap(), "refused 70");
}

#[tokio::test]
async fn a_signal_for_a_child_that_is_not_running_is_refused() {
    let engine = Engine::in_memory();
    let run = engine.start(&Expense, 50).await.unwrap();
    run.cancel().await.unwrap();
    let _ = run.wait().await;
    let error = run
        .signal_child(Expense::steps().review, Review::signals().approved, true)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            WorkflowError::NoChildRun {
                step: "review",
                child: "Review",
                ..
            }
        ),
        "{error}"
    );
}

// ---------------------------------------------------------------------------------------------
// `ctx.run_child`, for children chosen at run time: the same cancel and undo semantics.
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
struct DynamicTravel;

#[workflow]
impl DynamicTravel {
    #[step]
    async fn book(&self, ctx: &StepContext, trip: Trip) -> Result<(Trip, String), WorkflowError> {
        let booking = ctx.run_child(&Booking, trip.clone()).await?;
        Ok((trip, booking))
    }
    #[step(after = book)]
    async fn pay(&self, booked: (Trip, String)) -> Result<String, StepError> {
        let (trip, booking) = booked;
        log(format!("pay:{}", trip.key));
        if trip.decline {
            return Err(StepError::permanent(StepError::msg("card declined")));
        }
        Ok(format!("paid for {booking}"))
    }
}

#[tokio::test]
async fn a_child_run_by_a_step_body_is_undone_when_the_parent_compensates() {
    let trip = Trip {
        decline: true,
        ..Trip::new("dyn-undo-mem")
    };
    let error = Engine::in_memory()
        .run(&DynamicTravel, trip)
        .await
        .unwrap_err();
    assert!(
        matches!(error, WorkflowError::StepFailed { step: "pay", .. }),
        "{error}"
    );
    assert_eq!(
        entries("dyn-undo-mem"),
        ["reserve", "confirm", "pay", "release"]
    );
    assert_eq!(error.report().unwrap().compensated(), vec!["book"]);
}

#[tokio::test]
async fn a_durable_child_run_by_a_step_body_is_undone_when_the_parent_compensates() {
    let db = temp_db("dyn-undo");
    let engine = Engine::sqlite(&db).await.unwrap();
    let trip = Trip {
        decline: true,
        ..Trip::new("dyn-undo-sqlite")
    };
    let error = engine.run(&DynamicTravel, trip).await.unwrap_err();
    assert!(
        matches!(error, WorkflowError::StepFailed { step: "pay", .. }),
        "{error}"
    );
    assert_eq!(
        entries("dyn-undo-sqlite"),
        ["reserve", "confirm", "pay", "release"]
    );
}

#[tokio::test]
async fn cancelling_a_parent_cancels_a_child_run_by_a_step_body() {
    let engine = Engine::in_memory();
    let trip = Trip {
        hang: true,
        ..Trip::new("dyn-cancel-mem")
    };
    let run = engine.start(&DynamicTravel, trip).await.unwrap();
    wait_for("dyn-cancel-mem", "confirm").await;
    run.cancel().await.unwrap();
    let error = run.wait().await.unwrap_err();
    assert!(matches!(error, WorkflowError::Cancelled { .. }), "{error}");
    assert_eq!(entries("dyn-cancel-mem"), ["reserve", "confirm", "release"]);
}

#[tokio::test]
async fn a_durable_parents_events_show_its_childs_steps_before_the_step_completes() {
    let db = temp_db("events");
    let engine = Engine::sqlite(&db).await.unwrap();
    let run = engine
        .start_with_id(&Travel, "trip-4", Trip::new("events-sqlite"))
        .await
        .unwrap();
    let events: Vec<_> = run.events().collect().await;
    assert_eq!(run.wait().await.unwrap(), "paid for booked events-sqlite");
    let position = |wanted: &RunEvent<TravelStep>| events.iter().position(|e| e == wanted);
    let reserved = position(&RunEvent::Child {
        step: TravelStep::Book,
        item: None,
        event: Box::new(RunEvent::StepCompleted {
            step: "reserve",
            duration: None,
        }),
    });
    let booked = events.iter().position(|e| {
        matches!(
            e,
            RunEvent::StepCompleted {
                step: TravelStep::Book,
                ..
            }
        )
    });
    assert!(reserved.is_some() && reserved < booked, "{events:?}");
    assert!(
        matches!(events.last(), Some(RunEvent::RunFinished { .. })),
        "{events:?}"
    );
}

#[tokio::test]
async fn on_postgresql_a_completed_child_is_undone_and_a_retry_starts_a_new_child() {
    let Some(url) = common::postgres_store("child_steps").await else {
        return;
    };
    let engine = Engine::postgres(&url).await.unwrap();
    let declined = Trip {
        decline: true,
        ..Trip::new("undo-pg")
    };
    let error = engine.run(&Travel, declined).await.unwrap_err();
    assert!(
        matches!(error, WorkflowError::StepFailed { step: "pay", .. }),
        "{error}"
    );
    assert_eq!(entries("undo-pg"), ["reserve", "confirm", "pay", "release"]);
    let retried = Trip {
        failures: 1,
        ..Trip::new("retry-pg")
    };
    let run = engine
        .start_with_id(&Travel, "trip-pg", retried)
        .await
        .unwrap();
    assert_eq!(run.wait().await.unwrap(), "paid for booked retry-pg");
    let history = run.history().await.unwrap();
    assert_eq!(history.step("book").unwrap().children.len(), 2);
}

#[tokio::test]
async fn a_durable_parents_deadline_reaches_its_child_run() {
    let db = temp_db("deadline");
    let engine = Engine::sqlite(&db).await.unwrap();
    let trip = Trip {
        hang: true,
        ..Trip::new("deadline-sqlite")
    };
    let options = RunOptions::default()
        .deadline(Duration::from_millis(500))
        .run_id("trip-5");
    let finished = engine.run_with(&Travel, trip, options).await;
    let error = finished.result.unwrap_err();
    assert!(
        matches!(error, WorkflowError::DeadlineExceeded { .. }),
        "{error}"
    );
    // The child ran out of time too: its reservation is released, its run not completed.
    wait_for("deadline-sqlite", "release").await;
    let status = final_status(&engine, "~trip-5/book").await;
    assert!(
        matches!(status, RunStatus::Cancelled | RunStatus::Failed),
        "{status:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// A child workflow step inside a loop: each pass starts a child of its own.
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Increment;

#[workflow]
impl Increment {
    #[step]
    async fn add(&self, state: (u32, u32)) -> (u32, u32) {
        (state.0 + 1, state.1)
    }
}

#[derive(Clone)]
struct Countdown;

#[workflow]
impl Countdown {
    #[step]
    async fn init(&self, target: u32) -> (u32, u32) {
        (0, target)
    }
    #[step(after = any(init, bump), max_passes = 5)]
    async fn check(&self, state: (u32, u32)) -> (u32, u32, bool) {
        (state.0, state.1, state.0 >= state.1)
    }
    #[step(after = check, branch = (n, t, false))]
    async fn prepare(&self, n: u32, t: u32) -> (u32, u32) {
        (n, t)
    }
    #[step(after = prepare, workflow = Increment)]
    async fn bump(&self, state: (u32, u32)) -> (u32, u32);

    #[step(after = check, branch = (n, _, true))]
    async fn finish(&self, n: u32) -> String {
        format!("done at {n}")
    }
}

#[tokio::test]
async fn each_pass_of_a_loop_runs_a_child_of_its_own() {
    assert_eq!(
        Engine::in_memory().run(&Countdown, 3).await.unwrap(),
        "done at 3"
    );
    let db = temp_db("loop");
    let engine = Engine::sqlite(&db).await.unwrap();
    let run = engine
        .start_with_id(&Countdown, "count-1", 3)
        .await
        .unwrap();
    assert_eq!(run.wait().await.unwrap(), "done at 3");
    // The first pass's child, then one per later pass.
    for id in ["~count-1/bump", "~count-1/bump#2", "~count-1/bump#3"] {
        assert_eq!(
            final_status(&engine, id).await,
            RunStatus::Completed,
            "{id}"
        );
    }
}

#[tokio::test]
async fn a_durable_child_is_undone_by_a_parent_resumed_after_a_crash() {
    let trip = Trip {
        decline: true,
        ..Trip::new("undo-resumed")
    };
    // The first process stops right after `book` committed; the resumed one fails at `pay` and
    // finds the completed child in the store to undo it.
    let crashed = Harness::sqlite_temp(Travel)
        .await
        .crash_after(Travel::steps().book)
        .run(trip)
        .await;
    let resumed = crashed.resume_fresh().await;
    let error = resumed.error();
    assert!(
        matches!(error, WorkflowError::StepFailed { step: "pay", .. }),
        "{error}"
    );
    assert_eq!(
        entries("undo-resumed"),
        ["reserve", "confirm", "pay", "release"]
    );
    assert_eq!(error.report().unwrap().compensated(), vec!["book"]);
}
