//! A crate whose only dependency is `workflow-core`: no tokio, no futures, no serde.
//!
//! It proves two things:
//!
//! - the code `#[workflow]` generates names everything through `workflow_core`, so a user
//!   needs no other dependency to define a workflow;
//! - a workflow whose steps use no timers (no `timeout`, no `backoff`) runs on any executor,
//!   here a ten-line `block_on` built on `std` alone.
//!
//! `cargo run -p standalone-user` prints the result; `cargo test -p standalone-user` checks it.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use workflow_core::prelude::*;

/// An order line: item name and quantity.
#[derive(Clone, Debug)]
pub struct Line {
    item: &'static str,
    quantity: u32,
}

/// How an order was handled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Size {
    Small(u32),
    Bulk(u32),
}

/// Prices an order and routes it by size.
pub struct Pricing {
    unit_price: u32,
}

#[workflow]
impl Pricing {
    /// Start step: rejects empty orders.
    #[step]
    async fn validate(&self, lines: Vec<Line>) -> Result<Vec<Line>, StepError> {
        if lines.is_empty() {
            Err(StepError::msg("empty order"))
        } else {
            Ok(lines)
        }
    }

    #[step(after = validate)]
    async fn count(&self, lines: Vec<Line>) -> u32 {
        lines.iter().map(|l| l.quantity).sum()
    }

    #[step(after = validate)]
    async fn describe(&self, lines: Vec<Line>) -> String {
        lines
            .iter()
            .map(|l| format!("{} x{}", l.item, l.quantity))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Routes by quantity: one branch per `Size` variant.
    #[step(after = count)]
    async fn classify(&self, units: u32) -> Size {
        if units >= 10 {
            Size::Bulk(units)
        } else {
            Size::Small(units)
        }
    }

    #[step(after = classify, branch = Size::Small(units))]
    async fn list_price(&self, units: u32) -> u32 {
        units * self.unit_price
    }

    #[step(after = classify, branch = Size::Bulk(units))]
    async fn bulk_price(&self, units: u32) -> u32 {
        units * self.unit_price * 9 / 10
    }

    /// Whichever price step ran (they are exclusive) feeds the invoice.
    #[step(after = any(list_price, bulk_price))]
    async fn price(&self, total: u32) -> u32 {
        total
    }

    /// Joins the description and the price.
    #[step(after = [describe, price])]
    async fn invoice(&self, description: String, total: u32) -> String {
        format!("{description}: {total} cents")
    }
}

/// Runs a future to completion on the current thread, parking it while the future is pending.
pub fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }

    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => return output,
            Poll::Pending => thread::park(),
        }
    }
}

fn order(quantities: &[u32]) -> Vec<Line> {
    const ITEMS: [&str; 3] = ["bolt", "nut", "washer"];
    quantities
        .iter()
        .zip(ITEMS)
        .map(|(&quantity, item)| Line { item, quantity })
        .collect()
}

/// Prices an order on an in-memory engine, without any async runtime.
pub fn run(quantities: &[u32]) -> Result<String, WorkflowError> {
    let engine = Engine::in_memory();
    block_on(engine.run(&Pricing { unit_price: 25 }, order(quantities)))
}

fn main() {
    for quantities in [&[2, 3][..], &[8, 4, 1], &[]] {
        match run(quantities) {
            Ok(invoice) => println!("{invoice}"),
            Err(error) => println!("error: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_order_runs_without_a_tokio_runtime() {
        assert_eq!(run(&[2, 3]).unwrap(), "bolt x2, nut x3: 125 cents");
    }

    #[test]
    fn bulk_order_takes_the_other_branch() {
        let finished = block_on(Engine::in_memory().run_with(
            &Pricing { unit_price: 25 },
            order(&[8, 4, 1]),
            RunOptions::default(),
        ));
        assert_eq!(
            finished.result.unwrap(),
            "bolt x8, nut x4, washer x1: 292 cents"
        );
        assert_eq!(
            finished.history.with_outcome(StepOutcome::Skipped),
            ["list_price"]
        );
    }

    #[test]
    fn a_failing_step_fails_the_run() {
        let error = run(&[]).unwrap_err();
        assert_eq!(error.step(), Some("validate"));
    }
}
