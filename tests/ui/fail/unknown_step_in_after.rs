//! The user misspelled `charge` as `chrage` in an `after` list.
use workflow_core::prelude::*;

struct Checkout;

#[workflow]
impl Checkout {
    #[step]
    async fn validate(&self, order: u32) -> u32 {
        order
    }
    #[step(after = validate)]
    async fn reserve(&self, order: u32) -> u32 {
        order
    }
    #[step(after = validate)]
    async fn charge(&self, order: u32) -> u32 {
        order
    }
    #[step(after = [reserve, chrage])]
    async fn ship(&self, stock: u32, paid: u32) -> u32 {
        stock + paid
    }
}

fn main() {}
