//! A `for_each` step that ends the workflow: the workflow's output is the `Vec` of results.
use workflow_core::prelude::*;

struct Lengths;

#[workflow]
impl Lengths {
    #[step]
    async fn split(&self, text: String) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }
    #[step(after = split, for_each)]
    async fn measure(&self, word: String) -> usize {
        word.len()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let out: Vec<usize> = Engine::in_memory().run(&Lengths, "a bb".to_string()).await.unwrap();
    assert_eq!(out, vec![1, 2]);
}
