//! A fallback stands in for its step: it must return the step's output type.
use workflow_core::prelude::*;

struct Price;

#[workflow]
impl Price {
    #[step(on_failure = estimate)]
    async fn quote(&self, items: u32) -> Result<u64, StepError> {
        Ok(u64::from(items) * 250)
    }

    async fn estimate(&self, _error: StepError) -> String {
        "about 250 cents".to_owned()
    }
}

fn main() {}
