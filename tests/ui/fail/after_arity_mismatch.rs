//! `after = [reserve, charge]` delivers two values, but the step takes only one parameter.
use workflow_core::prelude::*;

struct Checkout;

#[workflow]
impl Checkout {
    #[step]
    async fn validate(&self, order: u32) -> u32 {
        order
    }
    #[step(after = validate)]
    async fn reserve(&self, order: u32) -> String {
        format!("{order}")
    }
    #[step(after = validate)]
    async fn charge(&self, order: u32) -> u64 {
        u64::from(order)
    }
    #[step(after = [reserve, charge])]
    async fn ship(&self, stock: String) -> String {
        stock
    }
}

fn main() {}
