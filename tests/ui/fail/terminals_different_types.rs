//! Two mutually exclusive terminal branches return different types: the workflow output
//! type is ambiguous.
use workflow_core::prelude::*;

struct Review;

#[workflow]
impl Review {
    #[step]
    async fn decide(&self, score: u32) -> bool {
        score > 50
    }
    #[step(after = decide, branch = true)]
    async fn approve(&self) -> String {
        "approved".to_string()
    }
    #[step(after = decide, branch = false)]
    async fn reject(&self) -> u32 {
        0
    }
}

fn main() {}
