//! The output of `load` goes to two steps, so it is cloned, but `Document` is not `Clone`.
use workflow_core::prelude::*;

struct Document {
    text: String,
}

struct Index;

#[workflow]
impl Index {
    #[step]
    async fn load(&self, path: String) -> Document {
        Document { text: path }
    }
    #[step(after = load)]
    async fn words(&self, doc: Document) -> usize {
        doc.text.split(' ').count()
    }
    #[step(after = load)]
    async fn chars(&self, doc: Document) -> usize {
        doc.text.len()
    }
    #[step(after = [words, chars])]
    async fn report(&self, words: usize, chars: usize) -> String {
        format!("{words} words, {chars} chars")
    }
}

fn main() {}
