//! An order saga: validate, then reserve stock and charge payment in parallel, then ship.
//!
//! `reserve` and `charge` are saga steps: when shipping fails, the payment is refunded and the
//! stock released, in reverse completion order, and the error report says so. The workflow is in
//! `workflow.rs`.
//!
//! Run with `cargo run --example order_saga` (ships) or
//! `cargo run --example order_saga -- --fail-shipping` (compensates).

mod workflow;

use workflow::{kettle, Checkout};
use workflow_core::prelude::*;

#[tokio::main]
async fn main() {
    let fail_shipping = std::env::args().any(|a| a == "--fail-shipping");
    let order = kettle();
    let engine = Engine::in_memory();
    println!("running the order saga (fail_shipping = {fail_shipping}):");
    let finished = engine
        .run_with(&Checkout { fail_shipping }, order, RunOptions::default())
        .await;
    match finished.result {
        Ok(shipment) => println!("{shipment}"),
        Err(error) => {
            println!("error: {error}");
            if let Some(report) = error.report() {
                println!("compensated, in order: {:?}", report.compensated());
            }
        }
    }
    println!("path: {:?}", finished.history.path);
}
