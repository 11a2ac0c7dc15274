//! With `item_results` the next step receives `Vec<Result<T, StepError>>`: taking `Vec<T>`
//! (ignoring the failures) is a type error at that parameter.
use workflow_core::prelude::*;

struct Import;

#[workflow]
impl Import {
    #[step]
    async fn rows(&self, n: u32) -> Vec<u32> {
        (0..n).collect()
    }
    #[step(after = rows, for_each, item_results)]
    async fn parse(&self, row: u32) -> Result<u32, StepError> {
        Ok(row)
    }
    #[step(after = parse)]
    async fn total(&self, parsed: Vec<u32>) -> u32 {
        parsed.iter().sum()
    }
}

fn main() {}
