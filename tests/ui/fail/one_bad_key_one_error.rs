//! One misspelled key is one error: the code using the workflow (running it, its steps, its
//! signals, its definition) compiles against stubs instead of failing again at every use.
use workflow_core::prelude::*;

#[derive(Clone)]
struct Expense;

#[workflow]
impl Expense {
    #[step(retires = 3)]
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
    let memory = Engine::in_memory();
    let _ = memory.run(&Expense, 3).await;
    let durable = Engine::sqlite("unused.db").await.unwrap();
    let run = durable.start(&Expense, 3).await.unwrap();
    let _ = run.signal(Expense::signals().decision, true).await;
    let _: Option<String> = run.wait().await.ok();
    let _ = Expense::steps().submit;
    let _ = ExpenseStep::Decide;
    println!("{}", Expense::definition().to_mermaid());
}
