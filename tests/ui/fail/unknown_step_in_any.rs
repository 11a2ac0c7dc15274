//! The user named a step that does not exist (`mirror`, no close match) inside `any(..)`.
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
    #[step(after = any(cache, mirror))]
    async fn respond(&self, value: String) -> String {
        value
    }
}

fn main() {}
