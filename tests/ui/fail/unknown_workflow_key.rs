//! The user misspelled the workflow option `version` as `verison`.
use workflow_core::prelude::*;

struct Billing;

#[workflow(verison = 2)]
impl Billing {
    #[step]
    async fn start(&self, n: u32) -> u32 {
        n
    }
}

fn main() {}
