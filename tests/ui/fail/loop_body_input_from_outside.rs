//! A step inside a loop takes an input from a step outside it: the loop step runs on every
//! iteration but the outside step only once, so the edge is rejected.
use workflow_core::prelude::*;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

struct Scaled {
    settle_runs: Arc<AtomicUsize>,
}

#[workflow]
impl Scaled {
    #[step]
    async fn init(&self, target: u32) -> (u32, u32) {
        (0, target)
    }
    #[step]
    async fn factor(&self, target: u32) -> u32 {
        target * 100
    }
    #[step(after = any(init, settle), max_passes = 10)]
    async fn check(&self, state: (u32, u32)) -> (u32, u32, bool) {
        (state.0, state.1, state.0 >= state.1)
    }
    #[step(after = check, branch = (n, t, false))]
    async fn bump(&self, n: u32, t: u32) -> (u32, u32) {
        (n + 1, t)
    }
    /// In the loop body, with one input from outside the loop.
    #[step(after = [bump, factor])]
    async fn settle(&self, state: (u32, u32), factor: u32) -> (u32, u32) {
        self.settle_runs.fetch_add(1, Ordering::SeqCst);
        assert_eq!(factor, state.1 * 100);
        state
    }
    #[step(after = check, branch = (n, _, true))]
    async fn finish(&self, n: u32) -> String {
        format!("done at {n}")
    }
}

fn main() {}
