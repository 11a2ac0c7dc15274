//! A step outside a loop waits (without a branch) for a step inside it, which runs on every
//! iteration: the loop must be left through a branch.
use workflow_core::prelude::*;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

async fn yields(n: usize) { for _ in 0..n { tokio::task::yield_now().await; } }

struct Observed {
    observe_runs: Arc<AtomicUsize>,
}

#[workflow]
impl Observed {
    #[step]
    async fn init(&self, target: u32) -> (u32, u32) {
        (0, target)
    }
    #[step]
    async fn slow(&self, target: u32) -> u32 {
        yields(200).await; // the loop iterates meanwhile
        target
    }
    #[step(after = any(init, bump), max_passes = 10)]
    async fn check(&self, state: (u32, u32)) -> (u32, u32, bool) {
        yields(1).await;
        (state.0, state.1, state.0 >= state.1)
    }
    #[step(after = check, branch = (n, t, false))]
    async fn bump(&self, n: u32, t: u32) -> (u32, u32) {
        (n + 1, t)
    }
    #[step(after = check, branch = (n, _, true), output)]
    async fn finish(&self, n: u32) -> String {
        format!("done at {n}")
    }
    #[step(after = [check, slow])]
    async fn observe(&self, check: (u32, u32, bool), slow: u32) -> String {
        self.observe_runs.fetch_add(1, Ordering::SeqCst);
        format!("{check:?} {slow}")
    }
}


fn main() {}
