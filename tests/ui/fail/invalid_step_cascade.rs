//! `validate` is not `async`; the steps after it must not also report "unknown step
//! `validate`": only the real mistake is reported.
use workflow_core::prelude::*;

struct Checkout;

#[workflow]
impl Checkout {
    #[step]
    async fn start(&self, order: u32) -> u32 {
        order
    }
    #[step(after = start)]
    fn validate(&self, order: u32) -> u32 {
        order
    }
    #[step(after = validate)]
    async fn ship(&self, order: u32) -> u32 {
        order
    }
}

fn main() {}
