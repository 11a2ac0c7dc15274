//! `branch` gates a single edge, but this step waits for two upstream steps.
use workflow_core::prelude::*;

struct Merge;

#[workflow]
impl Merge {
    #[step]
    async fn load(&self, n: u32) -> u32 {
        n
    }
    #[step(after = load)]
    async fn left(&self, n: u32) -> u32 {
        n
    }
    #[step(after = load)]
    async fn right(&self, n: u32) -> u32 {
        n
    }
    #[step(after = [left, right], branch = 0)]
    async fn zero(&self, a: u32, b: u32) -> u32 {
        a + b
    }
}

fn main() {}
