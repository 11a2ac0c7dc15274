//! The user misspelled `retry` as `retires`.
use workflow_core::prelude::*;

struct Flaky;

#[workflow]
impl Flaky {
    #[step(retires = 3)]
    async fn call(&self, n: u32) -> u32 {
        n
    }
}

fn main() {}
