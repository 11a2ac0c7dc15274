//! The loop head waits for all of `[draft, revise]`, but the entry and the back edge
//! never arrive together: a loop head needs `after = any(draft, revise)`.
use workflow_core::prelude::*;

struct Refine;

#[workflow]
impl Refine {
    #[step]
    async fn draft(&self, n: u32) -> u32 {
        n
    }
    #[step(after = [draft, revise], max_passes = 5)]
    async fn review(&self, a: u32, b: u32) -> (u32, bool) {
        (a + b, a > 5)
    }
    #[step(after = review, branch = (n, false))]
    async fn revise(&self, n: u32) -> u32 {
        n + 1
    }
    #[step(after = review, branch = (n, true))]
    async fn publish(&self, n: u32) -> u32 {
        n
    }
}

fn main() {}
