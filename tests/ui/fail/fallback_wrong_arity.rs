//! A fallback takes the `StepError`, optionally after the step's inputs: nothing else.
use workflow_core::prelude::*;

struct Price;

#[workflow]
impl Price {
    #[step(on_failure = estimate)]
    async fn quote(&self, items: u32) -> Result<u64, StepError> {
        Ok(u64::from(items) * 250)
    }

    async fn estimate(&self, items: u32, discount: u32, _error: StepError) -> u64 {
        u64::from(items * discount)
    }
}

fn main() {}
