//! A run handle's typed signals: a payload of the wrong type is a compile error at the payload.
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
    let engine = Engine::sqlite("unused.db").await.unwrap();
    let run = engine.handle::<Expense>("expense-1");
    let _ = run.signal(Expense::signals().decision, "yes").await;
}
