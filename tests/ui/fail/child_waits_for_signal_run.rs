//! A parent whose child waits for a signal cannot be run with `Engine::run` (no handle could
//! send the signal): start it and send it with `RunHandle::signal_child`.
use workflow_core::prelude::*;

#[derive(Default)]
struct Review;

#[workflow]
impl Review {
    #[step]
    async fn decide(&self, amount: u32, approved: Signal<bool>) -> bool {
        amount < 100 && approved.received() == Some(true)
    }
}

struct Expense;

#[workflow]
impl Expense {
    #[step(workflow = Review)]
    async fn review(&self, amount: u32) -> bool;
}

#[tokio::main]
async fn main() {
    let _ = Engine::in_memory().run(&Expense, 50).await;
}
