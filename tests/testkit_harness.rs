//! `workflow-testkit`: every capability of the harness, on small workflows.
//!
//! All tests run under paused tokio time: backoffs, timeouts and deadlines of minutes take
//! milliseconds of real time (checked where it matters).

#[path = "common/temp_db.rs"]
mod temp_db;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use temp_db::TempDb;

use workflow_core::prelude::*;
use workflow_core::serde::{Deserialize, Serialize};
use workflow_testkit::Harness;

// ---------------------------------------------------------------------------------------------
// Workflows under test
// ---------------------------------------------------------------------------------------------

/// What the real step bodies did, in order: shows which bodies ran (and were not mocked).
#[derive(Default, Clone)]
struct Log(Arc<Mutex<Vec<&'static str>>>);

impl Log {
    fn push(&self, entry: &'static str) {
        self.0.lock().unwrap().push(entry);
    }
    fn entries(&self) -> Vec<&'static str> {
        self.0.lock().unwrap().clone()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(crate = "workflow_core::serde")]
struct Order {
    id: u32,
    cents: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(crate = "workflow_core::serde")]
struct Receipt {
    order: u32,
    cents: u64,
}

/// validate -> reserve (saga) -> charge (saga; retried, 1 min timeout) -> ship (1 min timeout).
#[derive(Default)]
struct Shop {
    log: Log,
}

#[workflow]
impl Shop {
    #[step]
    async fn validate(&self, order: Order) -> Result<Order, StepError> {
        self.log.push("validate");
        if order.cents == 0 {
            return Err(StepError::permanent(StepError::msg("nothing to pay")));
        }
        Ok(order)
    }

    #[saga_step(after = validate, compensation = release)]
    async fn reserve(&self, order: Order) -> Order {
        self.log.push("reserve");
        order
    }

    #[saga_step(after = reserve, compensation = refund, retry = 3, backoff = "10s", timeout = "1m")]
    async fn charge(&self, order: Order) -> Result<Receipt, StepError> {
        self.log.push("charge");
        Ok(Receipt {
            order: order.id,
            cents: order.cents,
        })
    }

    #[step(after = charge, timeout = "1m")]
    async fn ship(&self, receipt: Receipt) -> String {
        self.log.push("ship");
        format!("order {} shipped ({} cents)", receipt.order, receipt.cents)
    }

    async fn release(&self, _order: Order) {
        self.log.push("release");
    }

    async fn refund(&self, _receipt: Receipt) {
        self.log.push("refund");
    }
}

fn order() -> Order {
    Order { id: 7, cents: 500 }
}

#[derive(Clone, Debug)]
enum Size {
    Small(u32),
    Large(u32),
}

/// A branch: small numbers are doubled, large ones halved; `report` takes either.
struct Router;

#[workflow]
impl Router {
    #[step]
    async fn classify(&self, n: u32) -> Size {
        if n < 100 {
            Size::Small(n)
        } else {
            Size::Large(n)
        }
    }
    #[step(after = classify, branch = Size::Small(n))]
    async fn double(&self, n: u32) -> u32 {
        n * 2
    }
    #[step(after = classify, branch = Size::Large(n))]
    async fn halve(&self, n: u32) -> u32 {
        n / 2
    }
    #[step(after = any(double, halve))]
    async fn report(&self, n: u32) -> String {
        format!("got {n}")
    }
}

/// A `for_each` step: its handle's input is one item, its output one result.
struct Squares;

#[workflow]
impl Squares {
    #[step]
    async fn split(&self, n: u32) -> Vec<u32> {
        (1..=n).collect()
    }
    #[step(after = split, for_each, retry = 1)]
    async fn square(&self, x: u32) -> u32 {
        x * x
    }
    #[step(after = square)]
    async fn sum(&self, squares: Vec<u32>) -> u32 {
        squares.iter().sum()
    }
}

/// Waits up to a minute for signal `decision`.
struct Approval;

#[workflow]
impl Approval {
    #[step]
    async fn request(&self, amount: u32) -> u32 {
        amount
    }
    #[step(after = request, deadline = "1m")]
    async fn decide(&self, amount: u32, decision: Signal<bool>) -> String {
        match decision {
            Signal::Received(true) => format!("{amount} approved"),
            Signal::Received(false) => format!("{amount} rejected"),
            Signal::TimedOut => format!("{amount} timed out"),
        }
    }
}

/// The message of a panic caught by `catch_unwind`.
fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Real time must stay far below the virtual time the workflow spent.
fn assert_fast(real: Instant) {
    assert!(
        real.elapsed() < Duration::from_secs(5),
        "took {:?} of real time",
        real.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Mocks
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_typed_mock_replaces_the_step_body() {
    let shop = Shop::default();
    let log = shop.log.clone();
    let run = Harness::new(shop)
        .mock(Shop::steps().charge, |(order,): (Order,)| async move {
            Ok(Receipt {
                order: order.id,
                cents: order.cents * 2,
            })
        })
        .run(order())
        .await;
    assert_eq!(run.output(), "order 7 shipped (1000 cents)");
    run.assert_path(["validate", "reserve", "charge", "ship"])
        .assert_attempts(Shop::steps().charge, 1);
    // The real `charge` never ran.
    assert_eq!(log.entries(), ["validate", "reserve", "ship"]);
}

#[tokio::test(start_paused = true)]
async fn a_fixed_value_mock_and_a_mock_that_fails() {
    let run = Harness::new(Shop::default())
        .mock_value(Shop::steps().charge, Receipt { order: 1, cents: 2 })
        .run(order())
        .await;
    assert_eq!(run.output(), "order 1 shipped (2 cents)");

    // A mock may fail: retries and compensation apply as to the real body.
    let run = Harness::new(Shop::default())
        .mock(Shop::steps().ship, |(receipt,)| async move {
            Err::<String, _>(StepError::msg(format!("no parcel for {}", receipt.order)))
        })
        .run(order())
        .await;
    assert_eq!(run.error().step(), Some("ship"));
    assert!(run.error().to_string().contains("no parcel for 7"));
    run.assert_compensated(["charge", "reserve"]);
}

#[tokio::test(start_paused = true)]
async fn a_for_each_step_is_mocked_per_item() {
    let run = Harness::new(Squares)
        .mock(Squares::steps().square, |(x,)| async move { Ok(x + 100) })
        .run(3)
        .await;
    assert_eq!(*run.output(), 101 + 102 + 103);
    run.assert_attempts(Squares::steps().square, 3);
}

// ---------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn failing_n_times_is_retried_with_backoff_in_virtual_time() {
    let real = Instant::now();
    let clock = tokio::time::Instant::now();
    let run = Harness::new(Shop::default())
        .fail_times(Shop::steps().charge, 3)
        .run(order())
        .await;
    assert_eq!(run.output(), "order 7 shipped (500 cents)");
    run.assert_attempts(Shop::steps().charge, 4)
        .assert_path(["validate", "reserve", "charge", "ship"]);
    // Three backoffs of (at least) 10 s each, in virtual time.
    assert!(
        clock.elapsed() >= Duration::from_secs(30),
        "{:?}",
        clock.elapsed()
    );
    assert_fast(real);
}

#[tokio::test(start_paused = true)]
async fn failing_more_often_than_the_retries_fails_the_step() {
    let run = Harness::new(Shop::default())
        .fail_times(Shop::steps().charge, 10)
        .run(order())
        .await;
    let error = run.error();
    assert_eq!(error.step(), Some("charge"));
    assert!(
        error.to_string().contains("injected failure of `charge`"),
        "{error}"
    );
    run.assert_attempts(Shop::steps().charge, 4)
        .assert_outcome(Shop::steps().charge, StepOutcome::Failed)
        .assert_skipped(["ship"])
        .assert_compensated(["reserve"]);
}

#[tokio::test(start_paused = true)]
async fn a_permanent_failure_is_not_retried() {
    let shop = Shop::default();
    let log = shop.log.clone();
    let run = Harness::new(shop)
        .fail_permanently(Shop::steps().charge)
        .run(order())
        .await;
    assert_eq!(run.error().step(), Some("charge"));
    run.assert_attempts(Shop::steps().charge, 1)
        .assert_ran(["validate", "reserve", "charge"])
        .assert_compensated(["reserve"]);
    assert_eq!(log.entries(), ["validate", "reserve", "release"]);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_step_is_a_failed_step() {
    let run = Harness::new(Shop::default())
        .panic(Shop::steps().ship)
        .run(order())
        .await;
    match run.error() {
        WorkflowError::StepFailed { step, error, .. } => {
            assert_eq!(*step, "ship");
            assert!(error.is_panic(), "{error}");
        }
        other => panic!("unexpected error: {other}"),
    }
    run.assert_outcome(Shop::steps().ship, StepOutcome::Failed)
        .assert_compensated(["charge", "reserve"]);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_step_times_out_after_a_minute_in_milliseconds() {
    let real = Instant::now();
    let clock = tokio::time::Instant::now();
    let run = Harness::new(Shop::default())
        .hang(Shop::steps().charge)
        .run(order())
        .await;
    match run.error() {
        WorkflowError::StepFailed { step, error, .. } => {
            assert_eq!(*step, "charge");
            assert!(error.is_timeout(), "{error}");
        }
        other => panic!("unexpected error: {other}"),
    }
    // 4 attempts of 1 minute each, and the backoffs between them.
    run.assert_attempts(Shop::steps().charge, 4);
    assert!(
        clock.elapsed() >= Duration::from_secs(4 * 60),
        "{:?}",
        clock.elapsed()
    );
    assert_fast(real);
}

#[tokio::test(start_paused = true)]
async fn a_run_deadline_stops_a_hang_and_compensates() {
    let real = Instant::now();
    let run = Harness::new(Shop::default())
        .hang(Shop::steps().ship)
        .deadline(Duration::from_secs(30))
        .run(order())
        .await;
    assert!(
        matches!(run.error(), WorkflowError::DeadlineExceeded { .. }),
        "{}",
        run.error()
    );
    run.assert_outcome(Shop::steps().ship, StepOutcome::Cancelled)
        .assert_compensated(["charge", "reserve"]);
    assert_fast(real);
}

#[tokio::test(start_paused = true)]
async fn a_failing_compensation_is_reported_and_does_not_stop_the_others() {
    let shop = Shop::default();
    let log = shop.log.clone();
    let run = Harness::new(shop)
        .fail_permanently(Shop::steps().ship)
        .fail_compensation(Shop::steps().charge)
        .run(order())
        .await;
    run.assert_compensation_failed(Shop::steps().charge)
        .assert_compensated(["reserve"]);
    let report = run.report().expect("a failure report");
    let failed: Vec<_> = report.failed_compensations().collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].compensation, "refund");
    assert!(failed[0].attempts > 1, "compensations are retried");
    assert!(run
        .error()
        .to_string()
        .contains("compensation `refund` of `charge` FAILED"));
    // The real `refund` never ran; `release` did.
    assert_eq!(log.entries(), ["validate", "reserve", "charge", "release"]);
    assert!(
        run.to_text().contains(
            "charge    completed  1 attempt  compensation refund FAILED after 3 attempts"
        ),
        "{}",
        run.to_text()
    );
}

#[test]
#[should_panic(expected = "step `validate` of `Shop` is not a saga step")]
fn failing_the_compensation_of_a_plain_step_is_refused() {
    let _ = Harness::new(Shop::default()).fail_compensation(Shop::steps().validate);
}

// ---------------------------------------------------------------------------------------------
// Crash and resume
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_crash_in_memory_interrupts_without_compensation() {
    let shop = Shop::default();
    let log = shop.log.clone();
    let run = Harness::new(shop)
        .crash_after(Shop::steps().reserve)
        .run(order())
        .await;
    assert!(matches!(
        run.error(),
        WorkflowError::Interrupted {
            step: "reserve",
            ..
        }
    ));
    run.assert_path(["validate", "reserve"])
        .assert_compensated([])
        .assert_skipped(["charge", "ship"]);
    assert_eq!(log.entries(), ["validate", "reserve"]);
}

#[tokio::test(start_paused = true)]
async fn a_crashed_durable_run_resumes_on_a_fresh_engine_without_rerunning_committed_steps() {
    let shop = Shop::default();
    let log = shop.log.clone();
    let crashed = Harness::sqlite_temp(shop)
        .await
        .crash_after(Shop::steps().charge)
        .run(order())
        .await;
    assert!(matches!(
        crashed.error(),
        WorkflowError::Interrupted { step: "charge", .. }
    ));
    crashed.assert_path(["validate", "reserve", "charge"]);
    let (engine, id) = crashed.durable().expect("a durable run");
    let status = engine.status(id).await.unwrap().summary.status;
    assert!(!status.is_finished(), "{status:?}");
    assert_eq!(log.entries(), ["validate", "reserve", "charge"]);

    let resumed = crashed.resume_fresh().await;
    assert_eq!(resumed.output(), "order 7 shipped (500 cents)");
    resumed
        .assert_restored(["validate", "reserve", "charge"])
        .assert_ran(["ship"])
        .assert_path(["validate", "reserve", "charge", "ship"])
        .assert_attempts(Shop::steps().charge, 0);
    // Only `ship` ran again.
    assert_eq!(log.entries(), ["validate", "reserve", "charge", "ship"]);
    assert_eq!(
        resumed.to_text(),
        "validate  completed  restored\n\
         reserve   completed  restored\n\
         charge    completed  restored\n\
         ship      completed  1 attempt\n"
    );
}

#[tokio::test(start_paused = true)]
async fn a_resumed_run_keeps_its_mocks_and_faults() {
    let dir = TempDb::new("testkit-harness");
    let shop = Shop::default();
    let log = shop.log.clone();
    let crashed = Harness::sqlite(shop, &dir)
        .await
        .crash_after(Shop::steps().reserve)
        .mock_value(Shop::steps().ship, "mocked shipment".to_string())
        .fail_times(Shop::steps().charge, 1)
        .run(order())
        .await;
    crashed.assert_path(["validate", "reserve"]);
    let resumed = crashed.resume_fresh().await;
    assert_eq!(resumed.output(), "mocked shipment");
    resumed
        .assert_restored(["validate", "reserve"])
        .assert_ran(["charge", "ship"])
        .assert_attempts(Shop::steps().charge, 2);
    assert_eq!(log.entries(), ["validate", "reserve", "charge"]);
    drop((crashed, resumed));
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "`resume_fresh` needs a durable run")]
async fn resuming_an_in_memory_run_is_refused() {
    let run = Harness::new(Shop::default())
        .crash_after(Shop::steps().reserve)
        .run(order())
        .await;
    let _ = run.resume_fresh().await;
}

// ---------------------------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_signal_is_delivered_to_the_step_that_waits_for_it() {
    let run = Harness::sqlite_temp(Approval)
        .await
        .signal(Approval::steps().decide, true)
        .run(40)
        .await;
    assert_eq!(run.output(), "40 approved");
    run.assert_path(["request", "decide"]);
}

#[tokio::test(start_paused = true)]
async fn a_signal_deadline_of_a_minute_passes_in_milliseconds() {
    let real = Instant::now();
    let clock = tokio::time::Instant::now();
    let run = Harness::sqlite_temp(Approval).await.run(40).await;
    assert_eq!(run.output(), "40 timed out");
    assert!(
        clock.elapsed() >= Duration::from_secs(55),
        "{:?}",
        clock.elapsed()
    );
    assert_fast(real);
}

#[tokio::test(start_paused = true)]
async fn a_signal_step_can_be_mocked_and_receives_the_signal() {
    let run = Harness::sqlite_temp(Approval)
        .await
        .signal(Approval::steps().decide, false)
        .mock(
            Approval::steps().decide,
            |(amount, decision): (u32, Signal<bool>)| async move {
                Ok(format!("mock saw {amount} and {decision:?}"))
            },
        )
        .run(3)
        .await;
    assert_eq!(run.output(), "mock saw 3 and Received(false)");
}

// ---------------------------------------------------------------------------------------------
// Path assertions
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn path_skipped_and_attempts_follow_the_branch_taken() {
    let small = Harness::new(Router).run(21).await;
    assert_eq!(small.output(), "got 42");
    small
        .assert_path(["classify", "double", "report"])
        .assert_ran(["report", "classify", "double"])
        .assert_skipped(["halve"])
        .assert_attempts(Router::steps().halve, 0)
        .assert_outcome(Router::steps().halve, StepOutcome::Skipped);

    let large = Harness::new(Router).run(300).await;
    assert_eq!(large.output(), "got 150");
    large
        .assert_path(["classify", "halve", "report"])
        .assert_skipped(["double"]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_path_assertion_prints_expected_and_actual_side_by_side() {
    let run = Harness::new(Shop::default())
        .fail_permanently(Shop::steps().ship)
        .run(order())
        .await;
    let message = panic_message(|| {
        run.assert_path(["validate", "charge", "reserve", "ship"]);
    });
    let table = "\
assertion failed: the path (completed steps, in completion order) differs
       expected | actual
       ---------+---------
    1  validate | validate
    2  charge   | reserve    <- differs
    3  reserve  | charge     <- differs
    4  ship     | -          <- missing
";
    assert!(message.starts_with(table), "{message}");
    assert!(
        message.contains("run of `Shop` failed: workflow `Shop` run "),
        "{message}"
    );
    assert!(
        message.contains("    ship      failed     1 attempt\n"),
        "{message}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_set_assertion_aligns_common_steps() {
    let run = Harness::new(Router).run(21).await;
    let message = panic_message(|| {
        run.assert_skipped(["double", "report"]);
    });
    let table = "\
assertion failed: the skipped steps differ (compared as sets)
    expected | actual
    ---------+---------
    double   | -          <- missing
    -        | halve      <- unexpected
    report   | -          <- missing
";
    assert!(message.starts_with(table), "{message}");

    let message = panic_message(|| {
        run.assert_attempts(Router::steps().double, 2);
    });
    assert!(
        message.starts_with(
            "assertion failed: the attempts of step `double` differ\n       expected   | actual\n"
        ),
        "{message}"
    );
    assert!(
        message.contains("    1  2 attempts | 1 attempt   <- differs"),
        "{message}"
    );

    let message = panic_message(|| {
        run.assert_compensated(["double"]);
    });
    assert!(
        message.contains("    1  double   | -          <- missing"),
        "{message}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_unknown_step_name_in_an_assertion_lists_the_steps() {
    let run = Harness::new(Router).run(1).await;
    let message = panic_message(|| {
        run.assert_ran(["clasify"]);
    });
    assert_eq!(
        message,
        "workflow-testkit: workflow `Router` has no step `clasify`; its steps are: classify, double, halve, report"
    );
}

#[tokio::test(start_paused = true)]
async fn output_and_error_explain_the_other_outcome() {
    let failed = Harness::new(Shop::default())
        .fail_permanently(Shop::steps().charge)
        .run(order())
        .await;
    let message = panic_message(|| {
        failed.output();
    });
    assert!(
        message.starts_with(
            "expected workflow `Shop` to succeed, but the run failed:\n    workflow `Shop` run "
        ),
        "{message}"
    );
    assert!(
        message.contains("injected permanent failure of `charge`"),
        "{message}"
    );
    assert!(
        message.contains("    charge    failed     1 attempt\n"),
        "{message}"
    );

    let ok = Harness::new(Router).run(1).await;
    let message = panic_message(|| {
        ok.error();
    });
    assert!(
        message.starts_with("expected workflow `Router` to fail, but the run succeeded"),
        "{message}"
    );
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_run_renders_as_text_with_outcomes_attempts_and_compensations() {
    let run = Harness::new(Shop::default())
        .fail_times(Shop::steps().charge, 1)
        .hang(Shop::steps().ship)
        .run(order())
        .await;
    assert_eq!(
        run.to_text(),
        "\
validate  completed  1 attempt
reserve   completed  1 attempt   compensated by release
charge    completed  2 attempts  compensated by refund
ship      failed     1 attempt
"
    );
    let router = Harness::new(Router).run(500).await;
    assert_eq!(
        router.to_text(),
        "\
classify  completed  1 attempt
double    skipped
halve     completed  1 attempt
report    completed  1 attempt
"
    );
}

#[tokio::test(start_paused = true)]
async fn a_run_renders_as_mermaid_with_a_class_per_outcome() {
    let run = Harness::new(Router).run(500).await;
    let mermaid = run.to_mermaid();
    assert!(mermaid.starts_with(&Router::definition().to_mermaid()));
    assert!(mermaid.ends_with(
        "\
    class classify completed
    class double skipped
    class halve completed
    class report completed
"
    ));
    for class in ["completed", "skipped", "failed", "cancelled", "compensated"] {
        assert!(
            mermaid.contains(&format!("    classDef {class} ")),
            "{mermaid}"
        );
    }

    let failed = Harness::new(Shop::default())
        .panic(Shop::steps().ship)
        .run(order())
        .await;
    assert!(failed.to_mermaid().ends_with(
        "\
    class validate completed
    class reserve compensated
    class charge compensated
    class ship failed
"
    ));
}
