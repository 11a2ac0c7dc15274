//! `retry = 0` means "no retry"; the user should remove the key.
use workflow_core::prelude::*;

struct Once;

#[workflow]
impl Once {
    #[step(retry = 0)]
    async fn call(&self, n: u32) -> u32 {
        n
    }
}

fn main() {}
