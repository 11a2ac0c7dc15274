//! A fallback that takes the step's input must take it with the step's input type.
use workflow_core::prelude::*;

struct Price;

#[workflow]
impl Price {
    #[step(on_failure = estimate)]
    async fn quote(&self, items: u32) -> Result<u64, StepError> {
        Ok(u64::from(items) * 250)
    }

    async fn estimate(&self, items: String, _error: StepError) -> u64 {
        items.len() as u64
    }
}

fn main() {}
