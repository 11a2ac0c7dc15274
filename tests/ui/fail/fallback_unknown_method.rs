//! `on_failure` names a method of the block.
use workflow_core::prelude::*;

struct Price;

#[workflow]
impl Price {
    #[step(on_failure = estimat)]
    async fn quote(&self, items: u32) -> Result<u64, StepError> {
        Ok(u64::from(items) * 250)
    }

    async fn estimate(&self, _error: StepError) -> u64 {
        250
    }
}

fn main() {}
