//! Retrying a finished run from a step (`workflow_core::retry_from`, the CLI's `runs retry ID
//! --from STEP`): the step and everything downstream of it run again, the saga steps the
//! stopped run compensated too, the other completed steps keep their journaled outputs; a
//! worker that has the definition takes the run up again.

#[path = "common/temp_db.rs"]
mod temp_db;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;
use temp_db::TempDb;

use workflow_core::prelude::*;
use workflow_core::store::{RunStatus, SqliteStore, StoreError};
use workflow_core::{plan_retry, retry_from};

static FETCHED: AtomicUsize = AtomicUsize::new(0);
static PRICED: AtomicUsize = AtomicUsize::new(0);
static SHIPPED: AtomicUsize = AtomicUsize::new(0);
static SHIP_FAILS: AtomicBool = AtomicBool::new(true);

#[derive(Clone)]
struct Shop;

#[workflow]
impl Shop {
    #[step]
    async fn fetch(&self, order: u32) -> u32 {
        FETCHED.fetch_add(1, SeqCst);
        order
    }
    #[step(after = fetch)]
    async fn price(&self, order: u32) -> u64 {
        PRICED.fetch_add(1, SeqCst);
        u64::from(order) * 100
    }
    #[step(after = price)]
    async fn ship(&self, cents: u64) -> Result<String, StepError> {
        SHIPPED.fetch_add(1, SeqCst);
        if SHIP_FAILS.load(SeqCst) {
            return Err(StepError::permanent(StepError::msg("no carrier")));
        }
        Ok(format!("shipped {cents}"))
    }
    #[step(after = ship)]
    async fn notify(&self, shipped: String) -> String {
        format!("{shipped}, notified")
    }
}

fn temp_db(name: &str) -> TempDb {
    TempDb::new(&format!("retry-from-{name}"))
}

#[tokio::test]
async fn a_failed_run_retried_from_its_failed_step_reruns_only_that_step_and_downstream() {
    let path = temp_db("shop");
    let engine = Engine::sqlite(&path).await.unwrap();
    engine.register(&Shop).await.unwrap();
    let run = engine.start_with_id(&Shop, "order-1", 7).await.unwrap();
    let error = run.wait().await.unwrap_err();
    assert!(
        matches!(error, WorkflowError::StepFailed { step: "ship", .. }),
        "{error}"
    );

    // Another process (the command line) plans and retries it through the store alone.
    let operator = SqliteStore::open(&path).await.unwrap();
    let id = RunId::from("order-1");
    let plan = plan_retry(&operator, &id, "ship").await.unwrap();
    assert_eq!(plan.status, RunStatus::Failed);
    assert_eq!(plan.kept, ["fetch", "price"]);
    assert_eq!(plan.rerun, ["ship", "notify"]);
    assert!(plan.undone.is_empty());
    // A dry run changed nothing.
    assert_eq!(run.status().await.unwrap(), RunStatus::Failed);

    SHIP_FAILS.store(false, SeqCst);
    retry_from(&operator, &id, "ship").await.unwrap();
    let output = tokio::time::timeout(Duration::from_secs(20), run.wait())
        .await
        .expect("the worker takes the retried run up")
        .unwrap();
    assert_eq!(output, "shipped 700, notified");
    assert_eq!(
        (
            FETCHED.load(SeqCst),
            PRICED.load(SeqCst),
            SHIPPED.load(SeqCst)
        ),
        (1, 1, 2),
        "fetch and price keep their journaled outputs; ship runs again"
    );
    // The journal keeps everything, the retry included.
    let journal = operator.journal_of(&id).await;
    assert!(journal.contains(&"rewound".to_owned()), "{journal:?}");

    // A live or unknown run, or an unknown step, is refused with what was wrong.
    let refused = plan_retry(&operator, &id, "shipp").await.unwrap_err();
    assert!(
        matches!(&refused, StoreError::UnknownStep { known, .. } if known.len() == 4),
        "{refused}"
    );
    let unknown = plan_retry(&operator, &RunId::from("nope"), "ship").await;
    assert!(matches!(unknown, Err(StoreError::UnknownRun(_))));
}

/// The kinds of a run's journal records, in order.
trait JournalKinds {
    async fn journal_of(&self, id: &RunId) -> Vec<String>;
}

impl JournalKinds for SqliteStore {
    async fn journal_of(&self, id: &RunId) -> Vec<String> {
        use workflow_core::store::Store;
        self.journal(id)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.event.kind().to_owned())
            .collect()
    }
}

static RESERVED: AtomicUsize = AtomicUsize::new(0);
static RELEASED: AtomicUsize = AtomicUsize::new(0);
static PAY_FAILS: AtomicBool = AtomicBool::new(true);

#[derive(Clone)]
struct Booking;

#[workflow]
impl Booking {
    #[step]
    async fn quote(&self, nights: u32) -> u32 {
        nights
    }
    #[saga_step(after = quote, compensation = release)]
    async fn reserve(&self, nights: u32) -> u32 {
        RESERVED.fetch_add(1, SeqCst);
        nights
    }
    #[step(after = reserve)]
    async fn pay(&self, nights: u32) -> Result<u32, StepError> {
        if PAY_FAILS.load(SeqCst) {
            return Err(StepError::permanent(StepError::msg("card declined")));
        }
        Ok(nights * 90)
    }
    async fn release(&self, _nights: u32) {
        RELEASED.fetch_add(1, SeqCst);
    }
}

#[tokio::test]
async fn a_retry_reruns_the_saga_steps_the_stopped_run_compensated() {
    let path = temp_db("booking");
    let engine = Engine::sqlite(&path).await.unwrap();
    engine.register(&Booking).await.unwrap();
    let run = engine.start_with_id(&Booking, "stay-1", 3).await.unwrap();
    run.wait().await.unwrap_err();
    assert_eq!(RELEASED.load(SeqCst), 1);

    let operator = SqliteStore::open(&path).await.unwrap();
    let id = RunId::from("stay-1");
    let plan = plan_retry(&operator, &id, "pay").await.unwrap();
    assert_eq!(plan.undone, ["reserve"]);
    assert_eq!(plan.rerun, ["reserve", "pay"]);
    assert_eq!(plan.kept, ["quote"]);

    PAY_FAILS.store(false, SeqCst);
    retry_from(&operator, &id, "pay").await.unwrap();
    let output = tokio::time::timeout(Duration::from_secs(20), run.wait())
        .await
        .expect("the worker takes the retried run up")
        .unwrap();
    assert_eq!(output, 270);
    assert_eq!((RESERVED.load(SeqCst), RELEASED.load(SeqCst)), (2, 1));
    // The run is finished again: a second retry plan is possible, a retry of a live run not.
    let history = run.history().await.unwrap();
    assert_eq!(history.path, vec!["quote", "reserve", "pay"]);
}

#[path = "common/postgres_schema.rs"]
mod common;

static PG_FAILS: AtomicBool = AtomicBool::new(true);

#[derive(Clone)]
struct Relay;

#[workflow]
impl Relay {
    #[step]
    async fn receive(&self, n: u32) -> u32 {
        n
    }
    #[step(after = receive)]
    async fn forward(&self, n: u32) -> Result<u32, StepError> {
        if PG_FAILS.load(SeqCst) {
            return Err(StepError::permanent(StepError::msg("peer down")));
        }
        Ok(n + 1)
    }
}

#[tokio::test]
async fn on_postgresql_a_retried_run_is_taken_up_again() {
    let Some(url) = common::postgres_store("retry_from").await else {
        return;
    };
    let engine = Engine::postgres(&url).await.unwrap();
    engine.register(&Relay).await.unwrap();
    let run = engine.start_with_id(&Relay, "relay-1", 41).await.unwrap();
    run.wait().await.unwrap_err();
    let operator = workflow_core::store::PostgresStore::connect(&url)
        .await
        .unwrap();
    let id = RunId::from("relay-1");
    // A live run is refused; this one is finished.
    let plan = plan_retry(&operator, &id, "forward").await.unwrap();
    assert_eq!(
        (plan.kept.as_slice(), plan.rerun.as_slice()),
        (&["receive".to_owned()][..], &["forward".to_owned()][..])
    );
    PG_FAILS.store(false, SeqCst);
    retry_from(&operator, &id, "forward").await.unwrap();
    let output = tokio::time::timeout(Duration::from_secs(20), run.wait())
        .await
        .expect("a worker takes the retried run up")
        .unwrap();
    assert_eq!(output, 42);
    let again = retry_from(&operator, &id, "nope").await.unwrap_err();
    assert!(matches!(again, StoreError::UnknownStep { .. }), "{again}");
}
