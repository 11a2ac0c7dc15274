//! A step under `#[cfg(..)]`: the graph is checked before `cfg` is evaluated, so the macro
//! refuses it with an error that says what to do instead.
use workflow_core::prelude::*;

struct Report;

#[workflow]
impl Report {
    #[step]
    async fn fetch(&self, n: u32) -> u32 {
        n
    }

    #[cfg(not(debug_assertions))]
    #[step(after = fetch)]
    async fn chart(&self, n: u32) -> String {
        format!("chart of {n}")
    }
}

fn main() {}
