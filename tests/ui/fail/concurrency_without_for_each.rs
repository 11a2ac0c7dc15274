//! `concurrency` limits the items of a `for_each` step, but this step has no `for_each`.
use workflow_core::prelude::*;

struct Batch;

#[workflow]
impl Batch {
    #[step]
    async fn split(&self, text: String) -> Vec<String> {
        text.split(' ').map(String::from).collect()
    }
    #[step(after = split, concurrency = 4)]
    async fn measure(&self, words: Vec<String>) -> usize {
        words.len()
    }
}

fn main() {}
