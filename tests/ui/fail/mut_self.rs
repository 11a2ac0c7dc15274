//! A step taking `&mut self`: steps of one run execute concurrently.
use workflow_core::prelude::*;

struct Counter {
    count: u32,
}

#[workflow]
impl Counter {
    #[step]
    async fn bump(&mut self, n: u32) -> u32 {
        self.count += n;
        self.count
    }
}

fn main() {}
