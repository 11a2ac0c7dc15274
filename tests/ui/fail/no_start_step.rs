//! Every step has an `after`, so no step receives the workflow input: the only "entry"
//! of the loop head is a step inside the loop.
use workflow_core::prelude::*;

struct Spin;

#[workflow]
impl Spin {
    #[step(after = any(left, right), max_passes = 3)]
    async fn head(&self, n: u32) -> u32 {
        n
    }
    #[step(after = head)]
    async fn left(&self, n: u32) -> u32 {
        n
    }
    #[step(after = head)]
    async fn right(&self, n: u32) -> u32 {
        n
    }
}

fn main() {}
