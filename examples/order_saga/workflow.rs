//! The order saga's types and workflow: validate, then reserve stock and charge payment in
//! parallel, then ship. `reserve` and `charge` are saga steps, undone by `release` and `refund`
//! when a later step fails. Shared by the `order_saga` example (`main.rs`) and
//! `tests/testkit_examples.rs`.

use std::time::Duration;

use workflow_core::prelude::*;

#[derive(Clone, Debug)]
pub struct Order {
    pub id: u32,
    pub sku: String,
    pub cents: u64,
}

#[derive(Clone, Debug)]
pub struct Reservation {
    pub order: u32,
    pub sku: String,
}

#[derive(Clone, Debug)]
pub struct Receipt {
    pub order: u32,
    pub cents: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("order {0} has no items")]
    Empty(u32),
    #[error("carrier refused the parcel for order {0}")]
    CarrierDown(u32),
}

/// The checkout saga.
pub struct Checkout {
    /// Makes `ship` fail (the carrier refuses the parcel), so the saga compensates.
    pub fail_shipping: bool,
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

/// The order both the example and the tests run: one kettle, 39.99.
pub fn kettle() -> Order {
    Order {
        id: 42,
        sku: "kettle".into(),
        cents: 3_999,
    }
}
