//! `#[saga_step(compensation = method)]`: the compensation is a plain async method of the
//! block that receives the step's output (optionally after a `&StepContext`).
use workflow_core::prelude::*;

struct Booking;

#[workflow]
impl Booking {
    #[saga_step(compensation = cancel)]
    async fn book(&self, seat: u32) -> u32 {
        seat
    }
    #[step(after = book)]
    async fn confirm(&self, seat: u32) -> String {
        format!("seat {seat}")
    }
    async fn cancel(&self, ctx: &StepContext, seat: u32) {
        let _ = (ctx.idempotency_key(), seat);
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(Engine::in_memory().run(&Booking, 4).await.unwrap(), "seat 4");
}
