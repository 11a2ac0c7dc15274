//! `for_each` over an upstream whose output (`u32`) is not a collection.
use workflow_core::prelude::*;

struct Batch;

#[workflow]
impl Batch {
    #[step]
    async fn count(&self, n: u32) -> u32 {
        n
    }
    #[step(after = count, for_each)]
    async fn each(&self, item: u32) -> u32 {
        item
    }
    #[step(after = each)]
    async fn total(&self, items: Vec<u32>) -> u32 {
        items.iter().sum()
    }
}

fn main() {}
