//! `after = [approve, reject]` waits for both, but they are different branches of
//! `decide`, so they never both run: the user meant `any(approve, reject)`.
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
    #[step(after = [approve, reject])]
    async fn notify(&self, a: String, b: String) -> String {
        a + &b
    }
}

fn main() {}
