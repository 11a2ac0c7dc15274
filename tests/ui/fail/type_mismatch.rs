//! `charge` returns `u64`, but `ship` declares the parameter that receives it as `String`.
use workflow_core::prelude::*;

struct Checkout;

#[workflow]
impl Checkout {
    #[step]
    async fn validate(&self, order: u32) -> u32 {
        order
    }
    #[step(after = validate)]
    async fn charge(&self, order: u32) -> u64 {
        u64::from(order)
    }
    #[step(after = charge)]
    async fn ship(&self, paid: String) -> String {
        paid
    }
}

fn main() {}
