//! A bounded loop: the head waits with `after = any(entry, back)` and declares
//! `max_passes`; a branch on the body decides whether to loop again or leave.
use workflow_core::prelude::*;

struct Refine;

#[workflow]
impl Refine {
    #[step]
    async fn draft(&self, n: u32) -> u32 {
        n
    }
    #[step(after = any(draft, revise), max_passes = 10)]
    async fn review(&self, n: u32) -> (u32, bool) {
        (n, n >= 5)
    }
    #[step(after = review, branch = (n, false))]
    async fn revise(&self, n: u32) -> u32 {
        n + 1
    }
    #[step(after = review, branch = (n, true))]
    async fn publish(&self, n: u32) -> String {
        format!("published at {n}")
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let out = Engine::in_memory().run(&Refine, 1).await.unwrap();
    assert_eq!(out, "published at 5");
}
