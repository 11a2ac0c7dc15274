//! `timeout` is given twice on one step.
use workflow_core::prelude::*;

struct Slow;

#[workflow]
impl Slow {
    #[step(timeout = "10s", retry = 2, timeout = "20s")]
    async fn call(&self, n: u32) -> u32 {
        n
    }
}

fn main() {}
