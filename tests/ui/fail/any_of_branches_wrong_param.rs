//! The step after `any(approve, reject)` declares `u32`, but both return `String`.
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
    async fn reject(&self) -> String {
        "rejected".to_string()
    }
    #[step(after = any(approve, reject))]
    async fn notify(&self, verdict: u32) -> u32 {
        verdict
    }
}

fn main() {}
