//! An order saga: validate, then reserve stock and charge payment in parallel, then ship.
//!
//! `reserve` and `charge` are saga steps: when shipping fails, the payment is refunded and the
//! stock released, in reverse completion order, and the error report says so.
//!
//! Run with `cargo run --example order_saga` (ships) or
//! `cargo run --example order_saga -- --fail-shipping` (compensates).

use std::time::Duration;

use workflow_core::prelude::*;

#[derive(Clone, Debug)]
struct Order {
    id: u32,
    sku: String,
    cents: u64,
}

#[derive(Clone, Debug)]
struct Reservation {
    order: u32,
    sku: String,
}

#[derive(Clone, Debug)]
struct Receipt {
    order: u32,
    cents: u64,
}

#[derive(Debug, thiserror::Error)]
enum CheckoutError {
    #[error("order {0} has no items")]
    Empty(u32),
    #[error("carrier refused the parcel for order {0}")]
    CarrierDown(u32),
}

struct Checkout {
    fail_shipping: bool,
}

#[workflow]
impl Checkout {
    #[step]
    async fn validate(&self, order: Order) -> Result<Order, CheckoutError> {
        if order.sku.is_empty() {
            return Err(CheckoutError::Empty(order.id));
        }
        Ok(order)
    }

    #[saga_step(after = validate, compensation = release)]
    async fn reserve(&self, order: Order) -> Reservation {
        tokio::time::sleep(Duration::from_millis(20)).await;
        println!("  reserved {} for order {}", order.sku, order.id);
        Reservation {
            order: order.id,
            sku: order.sku,
        }
    }

    #[saga_step(after = validate, compensation = refund, retry = 3, timeout = "10s")]
    async fn charge(&self, ctx: &StepContext, order: Order) -> Receipt {
        println!(
            "  charged {} cents (idempotency key {})",
            order.cents,
            ctx.idempotency_key()
        );
        Receipt {
            order: order.id,
            cents: order.cents,
        }
    }

    #[step(after = [reserve, charge])]
    async fn ship(
        &self,
        reservation: Reservation,
        receipt: Receipt,
    ) -> Result<String, CheckoutError> {
        if self.fail_shipping {
            return Err(CheckoutError::CarrierDown(reservation.order));
        }
        Ok(format!(
            "order {} shipped ({}, {} cents)",
            receipt.order, reservation.sku, receipt.cents
        ))
    }

    /// Undoes `reserve`.
    async fn release(&self, reservation: Reservation) {
        println!(
            "  released {} of order {}",
            reservation.sku, reservation.order
        );
    }

    /// Undoes `charge`.
    async fn refund(&self, receipt: Receipt) -> Result<(), CheckoutError> {
        println!(
            "  refunded {} cents of order {}",
            receipt.cents, receipt.order
        );
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    let fail_shipping = std::env::args().any(|a| a == "--fail-shipping");
    let order = Order {
        id: 42,
        sku: "kettle".into(),
        cents: 3_999,
    };
    let engine = Engine::in_memory();
    println!("running the order saga (fail_shipping = {fail_shipping}):");
    let finished = engine
        .run_with_history(Checkout { fail_shipping }, order)
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
