//! A straight chain: a start step, then `after = a` twice; the last step is the output.
use workflow_core::prelude::*;

struct Pipeline;

#[workflow]
impl Pipeline {
    #[step]
    async fn parse(&self, text: String) -> u32 {
        text.trim().parse().unwrap_or(0)
    }
    #[step(after = parse)]
    async fn double(&self, n: u32) -> u32 {
        n * 2
    }
    #[step(after = double)]
    async fn render(&self, n: u32) -> String {
        format!("= {n}")
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let out = Engine::in_memory().run(&Pipeline, " 21 ".to_string()).await.unwrap();
    assert_eq!(out, "= 42");
}
