//! `branch` on a start step: there is no upstream output to match on.
use workflow_core::prelude::*;

struct Gate;

#[workflow]
impl Gate {
    #[step(branch = Some(n))]
    async fn start(&self, n: u32) -> u32 {
        n
    }
}

fn main() {}
