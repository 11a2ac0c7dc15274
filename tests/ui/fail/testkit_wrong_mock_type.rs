//! A mock must take the step's inputs and return its output: `charge` takes `(u32,)` and
//! returns `u64`.
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
    // Wrong input: `charge` receives a `u32`, not a `String`.
    let _ = Harness::new(Checkout)
        .mock(Checkout::steps().charge, |(order,): (String,)| async move {
            Ok(order.len() as u64)
        })
        .run(3)
        .await;
    // Wrong output: `charge` returns a `u64`, not a `String`.
    let _ = Harness::new(Checkout)
        .mock(Checkout::steps().charge, |(order,)| async move {
            Ok(format!("charged {order}"))
        })
        .run(3)
        .await;
}
