//! A start step takes two parameters, but receives only the workflow input.
use workflow_core::prelude::*;

struct Start;

#[workflow]
impl Start {
    #[step]
    async fn start(&self, a: u32, b: u32) -> u32 {
        a + b
    }
}

fn main() {}
