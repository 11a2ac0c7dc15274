//! `timeout = "10 parsecs"` is not a duration.
use workflow_core::prelude::*;

struct Slow;

#[workflow]
impl Slow {
    #[step(timeout = "10 parsecs")]
    async fn call(&self, n: u32) -> u32 {
        n
    }
}

fn main() {}
