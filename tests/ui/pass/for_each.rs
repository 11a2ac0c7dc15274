//! `for_each` with `concurrency = N`: the step runs once per item of its upstream's output,
//! at most N at a time, and the next step receives a `Vec` of the results in item order.
use workflow_core::prelude::*;

struct WordCount;

#[workflow]
impl WordCount {
    #[step]
    async fn split(&self, text: String) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }
    #[step(after = split, for_each, concurrency = 2)]
    async fn measure(&self, word: String) -> usize {
        word.len()
    }
    #[step(after = measure)]
    async fn collect(&self, lengths: Vec<usize>) -> Vec<usize> {
        lengths
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let out = Engine::in_memory().run(&WordCount, "a bb ccc".to_string()).await.unwrap();
    assert_eq!(out, vec![1, 2, 3]);
}
