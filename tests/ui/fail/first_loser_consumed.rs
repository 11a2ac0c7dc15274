//! A racer of `first(..)` is cancelled when it loses: no other step may consume its output.
use workflow_core::prelude::*;

struct Race;

#[workflow]
impl Race {
    #[step]
    async fn prompt(&self, q: String) -> String {
        q
    }
    #[step(after = prompt)]
    async fn fast(&self, q: String) -> String {
        q
    }
    #[step(after = prompt)]
    async fn slow(&self, q: String) -> String {
        q
    }
    #[step(after = first(fast, slow), output)]
    async fn answer(&self, text: String) -> String {
        text
    }
    #[step(after = slow)]
    async fn audit(&self, text: String) -> usize {
        text.len()
    }
}

fn main() {}
