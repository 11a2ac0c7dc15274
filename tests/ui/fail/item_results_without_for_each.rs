//! `item_results` gives each `for_each` item's `Result` to the next step: it needs `for_each`.
use workflow_core::prelude::*;

struct Import;

#[workflow]
impl Import {
    #[step(item_results)]
    async fn parse(&self, row: u32) -> Result<u32, StepError> {
        Ok(row)
    }
}

fn main() {}
