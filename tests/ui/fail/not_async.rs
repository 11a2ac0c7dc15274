//! The user forgot `async` on a step.
use workflow_core::prelude::*;

struct Sync;

#[workflow]
impl Sync {
    #[step]
    fn start(&self, n: u32) -> u32 {
        n
    }
}

fn main() {}
