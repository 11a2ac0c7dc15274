//! A leading `&StepContext` parameter (run id, attempt, idempotency key) before the inputs;
//! it does not count as an input, neither on a start step nor after `after = [a, b]`.
use workflow_core::prelude::*;

struct Charge;

#[workflow]
impl Charge {
    #[step]
    async fn amount(&self, ctx: &StepContext, cents: u64) -> u64 {
        let _ = ctx.idempotency_key();
        cents
    }
    #[step(after = amount)]
    async fn tax(&self, cents: u64) -> u64 {
        cents / 10
    }
    #[step(after = [amount, tax])]
    async fn total(&self, ctx: &StepContext, cents: u64, tax: u64) -> u64 {
        let _ = ctx.idempotency_key();
        cents + tax
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let out = Engine::in_memory().run(&Charge, 1000).await.unwrap();
    assert_eq!(out, 1100);
}
