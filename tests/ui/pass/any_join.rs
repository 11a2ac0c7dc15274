//! An any-join: `after = any(a, b)` runs exactly once, with the output of whichever of the
//! two (same output type) finishes first.
use workflow_core::prelude::*;

struct Lookup;

#[workflow]
impl Lookup {
    #[step]
    async fn key(&self, key: String) -> String {
        key
    }
    #[step(after = key)]
    async fn cache(&self, key: String) -> String {
        format!("cached {key}")
    }
    #[step(after = key)]
    async fn database(&self, key: String) -> String {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        format!("db {key}")
    }
    #[step(after = any(cache, database))]
    async fn respond(&self, value: String) -> String {
        value
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let out = Engine::in_memory().run(&Lookup, "k".to_string()).await.unwrap();
    assert_eq!(out, "cached k");
}
