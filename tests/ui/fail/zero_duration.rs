//! `timeout = "0s"`: a zero timeout would fail every attempt.
use workflow_core::prelude::*;

struct Slow;

#[workflow]
impl Slow {
    #[step(timeout = "0s")]
    async fn call(&self, n: u32) -> u32 {
        n
    }
}

fn main() {}
