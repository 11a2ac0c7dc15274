//! `count` holds an `Rc` across an `.await`, so its future is not `Send`: runs move between
//! threads, so every step's future must be.
use std::rc::Rc;

use workflow_core::prelude::*;

struct Counter;

#[workflow]
impl Counter {
    #[step]
    async fn start(&self, n: u32) -> u32 {
        n
    }
    #[step(after = start)]
    async fn count(&self, n: u32) -> u32 {
        let shared = Rc::new(n);
        tokio::task::yield_now().await;
        *shared + 1
    }
}

fn main() {}
