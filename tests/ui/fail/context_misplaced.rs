//! `&StepContext` goes first, right after `&self`; anywhere else it gets its own message.
use workflow_core::prelude::*;

struct Lookup;

#[workflow]
impl Lookup {
    #[step]
    async fn fetch(&self, id: u32, ctx: &StepContext) -> String {
        format!("{id} {}", ctx.attempt())
    }
}

fn main() {}
