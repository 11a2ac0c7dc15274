//! `any(cache, database)` hands over whichever output arrives first, but `cache` returns
//! `String` and `database` returns `u64`.
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
        key
    }
    #[step(after = key)]
    async fn database(&self, key: String) -> u64 {
        key.len() as u64
    }
    #[step(after = any(cache, database))]
    async fn respond(&self, value: String) -> String {
        value
    }
}

fn main() {}
