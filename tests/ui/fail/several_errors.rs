//! Several unrelated mistakes in one block: all of them are reported at once (an unknown
//! key, a malformed duration, a non-async step, an unknown step in `after`).
use workflow_core::prelude::*;

struct Messy;

#[workflow]
impl Messy {
    #[step(retyr = 2, timeout = "fast")]
    async fn start(&self, n: u32) -> u32 {
        n
    }
    #[step(after = start)]
    fn middle(&self, n: u32) -> u32 {
        n
    }
    #[step(after = strat)]
    async fn end(&self, n: u32) -> u32 {
        n
    }
}

fn main() {}
