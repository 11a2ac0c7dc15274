//! The loop bound counts passes through the loop, the first included; the old key says so.
use workflow_core::prelude::*;

struct Draft;

#[workflow]
impl Draft {
    #[step]
    async fn start(&self, n: u32) -> u32 {
        n
    }
    #[step(after = any(start, revise), max_iterations = 3)]
    async fn review(&self, n: u32) -> (u32, bool) {
        (n, n > 2)
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
