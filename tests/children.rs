//! Child workflows: typed composition, journaled as runs of their own under deterministic
//! ids, so a parent that crashes and re-runs its step never starts the child twice.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

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
    let path = std::env::temp_dir().join(format!("children-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
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
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn a_user_run_cannot_take_the_place_of_a_child() {
    let path = std::env::temp_dir().join(format!("children-ns-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
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
    let _ = std::fs::remove_file(&path);
}
