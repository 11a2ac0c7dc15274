//! The output of step `price` is not serializable, so the workflow cannot run on a durable
//! engine (it still runs in memory): the error names the step.
use workflow_core::prelude::*;

#[derive(Clone)]
struct Quote {
    cents: u64,
}

struct Pricing;

#[workflow]
impl Pricing {
    #[step]
    async fn price(&self, items: u32) -> Quote {
        Quote { cents: u64::from(items) * 250 }
    }
    #[step(after = price)]
    async fn total(&self, quote: Quote) -> u64 {
        quote.cents
    }
}

#[allow(dead_code)]
async fn in_memory() -> u64 {
    Engine::in_memory().run(&Pricing, 3).await.unwrap()
}

#[allow(dead_code)]
async fn durable() -> u64 {
    let engine = Engine::sqlite("pricing.db").await.unwrap();
    engine.run(&Pricing, 3).await.unwrap()
}

fn main() {}
