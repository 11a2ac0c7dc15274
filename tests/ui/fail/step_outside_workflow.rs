//! `#[step]` on a method of an impl block that has no `#[workflow]`.
use workflow_core::prelude::*;

struct Forgot;

impl Forgot {
    #[step]
    async fn start(&self, n: u32) -> u32 {
        n
    }
}

fn main() {}
