//! Two start steps both receive the workflow input, but declare different types.
use workflow_core::prelude::*;

struct Pair;

#[workflow]
impl Pair {
    #[step]
    async fn left(&self, n: u32) -> u32 {
        n
    }
    #[step]
    async fn right(&self, s: String) -> u32 {
        s.len() as u32
    }
    #[step(after = [left, right])]
    async fn join(&self, a: u32, b: u32) -> u32 {
        a + b
    }
}

fn main() {}
