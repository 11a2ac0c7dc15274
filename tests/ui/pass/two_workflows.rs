//! Two workflows in one module, with steps of the same names: the generated items of one
//! do not collide with the other's.
use workflow_core::prelude::*;

struct First;
struct Second;

#[workflow]
impl First {
    #[step]
    async fn start(&self, n: u32) -> u32 {
        n + 1
    }
    #[step(after = start)]
    async fn finish(&self, n: u32) -> u32 {
        n * 10
    }
}

#[workflow]
impl Second {
    #[step]
    async fn start(&self, s: String) -> String {
        s
    }
    #[step(after = start)]
    async fn finish(&self, s: String) -> usize {
        s.len()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let engine = Engine::in_memory();
    assert_eq!(engine.run(&First, 1).await.unwrap(), 20);
    assert_eq!(engine.run(&Second, "abc".to_string()).await.unwrap(), 3);
}
