//! A run handle's typed signals: a misspelled signal name is a compile error naming the field.
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
    let engine = Engine::in_memory();
    let run = engine.start(&Expense, 3).await.unwrap();
    let _ = run.signal(Expense::signals().decison, true).await;
}
