//! Child workflows: typed composition, journaled as runs of their own under deterministic
//! ids, so a parent that crashes and re-runs its step never starts the child twice.

#[path = "common/temp_db.rs"]
mod temp_db;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use temp_db::TempDb;

use workflow_core::prelude::*;

/// The child: two steps, each counting its executions.
#[derive(Clone)]
struct Ship {
    packed: Arc<AtomicUsize>,
    labelled: Arc<AtomicUsize>,
}

#[workflow]
impl Ship {
    #[step]
    async fn pack(&self, order: u32) -> u32 {
        self.packed.fetch_add(1, Ordering::SeqCst);
        order * 10
    }
    #[step(after = pack)]
    async fn label(&self, parcel: u32) -> String {
        self.labelled.fetch_add(1, Ordering::SeqCst);
        format!("parcel-{parcel}")
    }
}

/// The parent: calls the child from `ship`; on its first execution `ship` hangs after the
/// child finished, as if the process died before `ship`'s result was committed.
struct Order {
    child: Ship,
    hang_once: Arc<AtomicBool>,
    child_id: Arc<std::sync::Mutex<Option<String>>>,
}

#[workflow]
impl Order {
    #[step]
    async fn take(&self, order: u32) -> u32 {
        order
    }
    #[step(after = take)]
    async fn ship(&self, ctx: &StepContext, order: u32) -> Result<String, WorkflowError> {
        let label = ctx.run_child(&self.child, order).await?;
        *self.child_id.lock().unwrap() = Some(ctx.idempotency_key());
        if self.hang_once.swap(false, Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        Ok(label)
    }
}

fn order(hang_once: bool) -> (Order, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let (packed, labelled) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let workflow = Order {
        child: Ship {
            packed: packed.clone(),
            labelled: labelled.clone(),
        },
        hang_once: Arc::new(AtomicBool::new(hang_once)),
        child_id: Arc::default(),
    };
    (workflow, packed, labelled)
}

#[tokio::test]
async fn a_child_runs_in_memory_with_checked_types() {
    let (workflow, packed, labelled) = order(false);
    let output = Engine::in_memory().run(&workflow, 4).await.unwrap();
    assert_eq!(output, "parcel-40");
    assert_eq!(
        (
            packed.load(Ordering::SeqCst),
            labelled.load(Ordering::SeqCst)
        ),
        (1, 1)
    );
}

#[tokio::test]
async fn a_resumed_parent_reuses_its_finished_child_instead_of_starting_it_again() {
    let path = TempDb::new("children");
    let engine = Engine::sqlite(&path).await.unwrap();
    let (workflow, packed, labelled) = order(true);
    let child_id = workflow.child_id.clone();
    let run_id = RunId::from("order-7");
    let first = {
        let engine = engine.clone();
        let run_id = run_id.clone();
        tokio::spawn(async move {
            engine
                .execute(&workflow, run_id, Some(7), RunOptions::default())
                .await
        })
    };
    while child_id.lock().unwrap().is_none() {
        tokio::task::yield_now().await;
    }
    first.abort(); // the parent "crashes" after its child finished, before `ship` committed
    let _ = first.await;

    let (again, packed_again, labelled_again) = order(false);
    let finished = engine.resume(&again, &run_id).await;
    assert_eq!(finished.result.unwrap(), "parcel-70");
    assert_eq!(finished.history.restored, ["take"]);
    assert_eq!(
        (
            packed.load(Ordering::SeqCst),
            labelled.load(Ordering::SeqCst)
        ),
        (1, 1)
    );
    assert_eq!(
        (
            packed_again.load(Ordering::SeqCst),
            labelled_again.load(Ordering::SeqCst)
        ),
        (0, 0),
        "the child's committed steps did not run again"
    );
    let child = engine.status(&RunId::from("~order-7/ship")).await.unwrap();
    assert_eq!(child.summary.status, RunStatus::Completed);
    assert_eq!(child.summary.workflow, "Ship");
}

#[tokio::test]
async fn a_user_run_cannot_take_the_place_of_a_child() {
    let path = TempDb::new("children-ns");
    let engine = Engine::sqlite(&path).await.unwrap();
    let (workflow, _, _) = order(false);
    // A user run whose id is what a child's id would be without a namespace of its own.
    let decoy = engine
        .execute(
            &workflow.child,
            RunId::from("order-9/ship"),
            Some(1),
            RunOptions::default(),
        )
        .await;
    assert_eq!(decoy.result.unwrap(), "parcel-10");
    let parent = engine
        .execute(
            &workflow,
            RunId::from("order-9"),
            Some(9),
            RunOptions::default(),
        )
        .await;
    assert_eq!(
        parent.result.unwrap(),
        "parcel-90",
        "the child's own output"
    );
    // The child namespace is closed to callers.
    let reserved = engine
        .start_with_id(&workflow.child, "~order-9/ship", 2)
        .await;
    assert!(
        matches!(reserved, Err(WorkflowError::ReservedRunId { .. })),
        "{reserved:?}"
    );
}

/// A child that fails on its first execution (counted), then succeeds.
#[derive(Clone, Default)]
struct Flaky {
    runs: Arc<AtomicUsize>,
}

#[workflow]
impl Flaky {
    #[step]
    async fn work(&self, n: u32) -> Result<u32, StepError> {
        if self.runs.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(StepError::permanent(StepError::msg("first child failed")));
        }
        Ok(n * 2)
    }
}

#[derive(Clone, Default)]
struct RetryParent {
    child: Flaky,
}

#[workflow]
impl RetryParent {
    #[step(retry = 1, backoff = "1ms")]
    async fn call(&self, ctx: &StepContext, n: u32) -> Result<u32, WorkflowError> {
        ctx.run_child(&self.child, n).await
    }
}

fn temp_db(name: &str) -> TempDb {
    TempDb::new(&format!("children-{name}"))
}

#[tokio::test]
async fn a_retry_of_the_parent_step_starts_a_new_child_attempt() {
    let db = temp_db("retry");
    let engine = Engine::sqlite(&db).await.unwrap();
    let wf = RetryParent::default();
    let out = engine
        .run_with(&wf, 4, RunOptions::new().run_id("p-1"))
        .await
        .result
        .unwrap();
    assert_eq!(out, 8);
    assert_eq!(
        wf.child.runs.load(Ordering::SeqCst),
        2,
        "one child per attempt"
    );
    let first = engine.status(&RunId::from("~p-1/call")).await.unwrap();
    assert_eq!(first.summary.status, RunStatus::Failed);
    let second = engine.status(&RunId::from("~p-1/call@2")).await.unwrap();
    assert_eq!(second.summary.status, RunStatus::Completed);
}

/// A child that books something (a saga step), then works for an hour.
#[derive(Clone, Default)]
struct Booking {
    booked: Arc<AtomicUsize>,
    undone: Arc<AtomicUsize>,
}

#[workflow]
impl Booking {
    #[saga_step(compensation = unbook)]
    async fn book(&self, n: u32) -> u32 {
        self.booked.fetch_add(1, Ordering::SeqCst);
        n
    }

    #[step(after = book)]
    async fn work(&self, n: u32) -> u32 {
        tokio::time::sleep(std::time::Duration::from_secs(3_600)).await;
        n
    }

    async fn unbook(&self, _n: u32) {
        self.undone.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Clone, Default)]
struct Trip {
    child: Booking,
}

#[workflow]
impl Trip {
    #[step]
    async fn plan(&self, ctx: &StepContext, n: u32) -> Result<u32, WorkflowError> {
        ctx.run_child(&self.child, n).await
    }
}

async fn eventually(what: &str, check: impl Fn() -> bool) {
    let started = std::time::Instant::now();
    while !check() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_parent_cancels_its_child_and_compensates_it() {
    let db = temp_db("cancel");
    let engine = Engine::sqlite(&db).await.unwrap();
    let wf = Trip::default();
    let run = engine.start_with_id(&wf, "trip-1", 3).await.unwrap();
    let booked = wf.child.booked.clone();
    eventually("the child booked", || booked.load(Ordering::SeqCst) == 1).await;
    run.cancel().await.unwrap();
    assert!(matches!(
        run.wait().await,
        Err(WorkflowError::Cancelled { .. })
    ));
    // The child does not wait as an orphan: it is cancelled and its booking undone.
    let child = RunId::from("~trip-1/plan");
    let undone = wf.child.undone.clone();
    eventually("the child's booking was undone", || {
        undone.load(Ordering::SeqCst) == 1
    })
    .await;
    let started = std::time::Instant::now();
    loop {
        let status = engine.status(&child).await.unwrap().summary.status;
        if status == RunStatus::Cancelled {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "child {status:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_parents_deadline_reaches_its_child() {
    let db = temp_db("deadline");
    let engine = Engine::sqlite(&db).await.unwrap();
    let wf = Trip::default();
    let options = RunOptions::new()
        .run_id("trip-2")
        .deadline(std::time::Duration::from_secs(600));
    let parent = engine.start_with(&wf, 5, options).await.unwrap();
    let booked = wf.child.booked.clone();
    eventually("the child booked", || booked.load(Ordering::SeqCst) == 1).await;
    let parent_deadline = engine
        .status(parent.id())
        .await
        .unwrap()
        .summary
        .deadline_at;
    let child_deadline = engine
        .status(&RunId::from("~trip-2/plan"))
        .await
        .unwrap()
        .summary
        .deadline_at;
    let (Some(parent_at), Some(child_at)) = (parent_deadline, child_deadline) else {
        panic!("deadlines: parent {parent_deadline:?}, child {child_deadline:?}");
    };
    assert!(
        child_at <= parent_at,
        "the child may not outlive its parent's deadline"
    );
    parent.cancel().await.unwrap();
}
