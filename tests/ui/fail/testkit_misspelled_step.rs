//! A misspelled step handle is a compile error that names the misspelled field.
use workflow_core::prelude::*;
use workflow_testkit::Harness;

struct Checkout;

#[workflow]
impl Checkout {
    #[step]
    async fn validate(&self, order: u32) -> u32 {
        order
    }
    #[step(after = validate)]
    async fn charge(&self, order: u32) -> u64 {
        u64::from(order) * 100
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let run = Harness::new(Checkout)
        .fail_times(Checkout::steps().chrage, 2)
        .run(3)
        .await;
    let _ = run.output();
}
