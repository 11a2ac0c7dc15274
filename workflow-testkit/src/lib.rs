//! # workflow-testkit
//!
//! Test your `#[workflow]`s with `cargo test`: replace a step's body with a typed mock, make
//! a step fail, panic or hang, crash a durable run after a step and resume it on a fresh
//! engine, then assert the path the run took, in the terms of your graph.
//!
//! Add it as a dev-dependency, next to tokio with its `test-util` feature (for paused time):
//!
//! ```toml
//! [dev-dependencies]
//! workflow-testkit = "0.1"
//! tokio = { version = "1", features = ["macros", "rt", "test-util"] }
//! ```
//!
//! ## Testing an order saga
//!
//! `validate`, then two saga steps, `reserve` and `charge`, then `ship`. Three tests: the
//! happy path with a mocked payment provider, a failed shipment that is compensated, and a
//! crash right after `charge` that a fresh engine resumes without reserving or charging twice.
//!
//! ```
//! use workflow_core::prelude::*;
//! use workflow_core::serde::{Deserialize, Serialize};
//! use workflow_testkit::Harness;
//!
//! #[derive(Clone, Debug, Serialize, Deserialize)]
//! #[serde(crate = "workflow_core::serde")]
//! pub struct Order {
//!     id: u32,
//!     cents: u64,
//! }
//!
//! #[derive(Clone, Debug, Serialize, Deserialize)]
//! #[serde(crate = "workflow_core::serde")]
//! pub struct Receipt {
//!     order: u32,
//!     cents: u64,
//! }
//!
//! pub struct Checkout;
//!
//! #[workflow]
//! impl Checkout {
//!     #[step]
//!     async fn validate(&self, order: Order) -> Result<Order, StepError> {
//!         if order.cents == 0 {
//!             return Err(StepError::permanent(StepError::msg("nothing to pay")));
//!         }
//!         Ok(order)
//!     }
//!
//!     /// Reserves the stock, then hands the order on.
//!     #[saga_step(after = validate, compensation = release)]
//!     async fn reserve(&self, order: Order) -> Order {
//!         order
//!     }
//!
//!     #[saga_step(after = reserve, compensation = refund, retry = 3, backoff = "30s")]
//!     async fn charge(&self, order: Order) -> Result<Receipt, StepError> {
//!         Err(StepError::msg("no payment provider in this example: tests mock it"))
//!     }
//!
//!     #[step(after = charge, timeout = "5m")]
//!     async fn ship(&self, receipt: Receipt) -> String {
//!         format!("order {} shipped, {} cents paid", receipt.order, receipt.cents)
//!     }
//!
//!     async fn release(&self, _order: Order) {}
//!
//!     async fn refund(&self, _receipt: Receipt) {}
//! }
//!
//! fn order() -> Order {
//!     Order { id: 7, cents: 1_250 }
//! }
//!
//! // In a test file, each of these is a `#[tokio::test(start_paused = true)] async fn`.
//!
//! async fn ships_after_two_declined_payments() {
//!     let steps = Checkout::steps();
//!     let run = Harness::new(Checkout)
//!         // The payment provider's stand-in: rustc checks the closure against `charge`,
//!         // `(Order,)` in, `Receipt` out.
//!         .mock(steps.charge, |(order,)| async move {
//!             Ok(Receipt { order: order.id, cents: order.cents })
//!         })
//!         // Two retryable failures before the mock runs: the 30 s backoffs take no real time.
//!         .fail_times(steps.charge, 2)
//!         .run(order())
//!         .await;
//!     assert_eq!(run.output(), "order 7 shipped, 1250 cents paid");
//!     run.assert_path(["validate", "reserve", "charge", "ship"])
//!         .assert_attempts(steps.charge, 3)
//!         .assert_skipped([]);
//! }
//!
//! /// The same stand-in, for the next tests.
//! fn paid<B>(harness: Harness<Checkout, B>) -> Harness<Checkout, B> {
//!     harness.mock(Checkout::steps().charge, |(order,)| async move {
//!         Ok(Receipt { order: order.id, cents: order.cents })
//!     })
//! }
//!
//! async fn a_failed_shipment_is_compensated() {
//!     let steps = Checkout::steps();
//!     let run = paid(Harness::new(Checkout))
//!         .fail_permanently(steps.ship)
//!         .run(order())
//!         .await;
//!     assert_eq!(run.error().step(), Some("ship"));
//!     // Compensation runs in reverse completion order.
//!     run.assert_compensated(["charge", "reserve"]);
//!     assert_eq!(
//!         run.to_text(),
//!         "validate  completed  1 attempt\n\
//!          reserve   completed  1 attempt  compensated by release\n\
//!          charge    completed  1 attempt  compensated by refund\n\
//!          ship      failed     1 attempt\n"
//!     );
//! }
//!
//! async fn resumes_after_a_crash_without_charging_twice() {
//!     let steps = Checkout::steps();
//!     // A durable engine on a temporary SQLite file; the run stops as if the process died
//!     // right after `charge` was committed.
//!     let crashed = paid(Harness::sqlite_temp(Checkout).await)
//!         .crash_after(steps.charge)
//!         .run(order())
//!         .await;
//!     assert!(matches!(
//!         crashed.error(),
//!         WorkflowError::Interrupted { step: "charge", .. }
//!     ));
//!     crashed.assert_path(["validate", "reserve", "charge"]).assert_compensated([]);
//!
//!     // A new engine over the same file picks the run up where it stopped.
//!     let resumed = crashed.resume_fresh().await;
//!     assert_eq!(resumed.output(), "order 7 shipped, 1250 cents paid");
//!     resumed
//!         .assert_restored(["validate", "reserve", "charge"])
//!         .assert_ran(["ship"])
//!         .assert_attempts(steps.reserve, 0)
//!         .assert_attempts(steps.charge, 0);
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! #     ships_after_two_declined_payments().await;
//! #     a_failed_shipment_is_compensated().await;
//! #     resumes_after_a_crash_without_charging_twice().await;
//! # }
//! ```
//!
//! ## What a test can do
//!
//! A [`Harness`] takes typed step handles from the generated `W::steps()`: `Checkout::steps().
//! charge` is a [`StepHandle<Checkout, (Order,), Receipt>`](StepHandle) (the step's inputs as a
//! tuple, a signal step's `Signal<T>` last; for a `for_each` step, one item and its result). A
//! misspelled step is a compile error, and so is a mock or a signal payload of the wrong type.
//!
//! - [`mock`](Harness::mock), [`mock_value`](Harness::mock_value): replace a step's body;
//! - [`fail_times`](Harness::fail_times), [`fail_permanently`](Harness::fail_permanently),
//!   [`panic`](Harness::panic), [`hang`](Harness::hang): make a step misbehave (retries,
//!   timeouts and compensation apply as in production);
//! - [`fail_compensation`](Harness::fail_compensation): make a saga step's undo fail;
//! - [`crash_after`](Harness::crash_after) and [`TestRun::resume_fresh`]: crash after a step
//!   commits, then resume on a fresh engine over the same store;
//! - [`signal`](Harness::signal) (durable): deliver a signal to the step that waits for it;
//! - [`deadline`](Harness::deadline): a deadline for the whole run.
//!
//! A [`TestRun`] holds the result and the history: [`output`](TestRun::output) and
//! [`error`](TestRun::error) (each panics with the run's steps when the run went the other
//! way), `assert_path` (completion order), `assert_ran`, `assert_skipped`, `assert_restored`
//! (sets), `assert_attempts`, `assert_outcome`, `assert_compensated` (compensation order),
//! `assert_compensation_failed`; and [`to_text`](TestRun::to_text) and
//! [`to_mermaid`](TestRun::to_mermaid) render the run for snapshot tests.
//!
//! An assertion failure prints what was expected beside what happened, then the run:
//!
//! ```text
//! assertion failed: the path (completed steps, in completion order) differs
//!        expected | actual
//!        ---------+---------
//!     1  validate | validate
//!     2  reserve  | reserve
//!     3  charge   | charge
//!     4  ship     | -          <- missing
//!
//! run of `Checkout` failed: workflow `Checkout` run 3f..-4: step `ship` failed after 1 attempt(s): ...
//! steps:
//!     validate  completed  1 attempt
//!     ...
//! ```
//!
//! ## Virtual time
//!
//! Run tests under tokio's paused clock: `#[tokio::test(start_paused = true)]` (tokio's
//! `test-util` feature). Whenever the runtime has nothing else to do, the clock jumps to the
//! next timer, so retry backoffs, step timeouts, run deadlines and signal deadlines of minutes
//! or hours pass in milliseconds of real time. A [`hang`](Harness::hang)ing step with a
//! `timeout = "1m"` times out at once. On a durable harness the clock also jumps while the
//! runtime waits for SQLite's threads, so do not rely on real time passing "before" a timer;
//! and a signal wait re-reads the store every 200 ms of virtual time, so a signal deadline of
//! minutes passes in milliseconds but one of days takes seconds.

mod harness;
mod run;
mod table;
mod temp;

pub use harness::{Harness, InMemory, SignalStep, Sqlite};
pub use run::{StepNames, TestRun};
pub use workflow_core::testing::StepHandle;
