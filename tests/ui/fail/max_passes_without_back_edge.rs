//! `max_passes` on a step that nothing loops back to.
use workflow_core::prelude::*;

struct Straight;

#[workflow]
impl Straight {
    #[step]
    async fn draft(&self, n: u32) -> u32 {
        n
    }
    #[step(after = draft, max_passes = 3)]
    async fn review(&self, n: u32) -> u32 {
        n
    }
}

fn main() {}
