//! A fan-out and an all-join: `after = [a, b]` waits for both and receives their outputs in
//! that order, one parameter each.
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
        format!("stock for {order}")
    }
    #[step(after = validate)]
    async fn charge(&self, order: u32) -> u64 {
        u64::from(order) * 100
    }
    #[step(after = [reserve, charge])]
    async fn ship(&self, stock: String, paid: u64) -> String {
        format!("{stock}, paid {paid}")
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let out = Engine::in_memory().run(&Checkout, 3).await.unwrap();
    assert_eq!(out, "stock for 3, paid 300");
}
