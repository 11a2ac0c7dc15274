//! `Engine::run` holds no handle, so nothing could signal the run: a workflow with signal steps
//! is a compile error naming the step, which says how to run it instead.
use workflow_core::prelude::*;

#[derive(Clone)]
struct Expense;

#[workflow]
impl Expense {
    #[step]
    async fn submit(&self, amount: u32) -> u32 {
        amount
    }
    #[step(after = submit)]
    async fn decide(&self, amount: u32, decision: Signal<bool>) -> String {
        format!("{amount}: {decision:?}")
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let _ = Engine::in_memory().run(&Expense, 3).await;
}
