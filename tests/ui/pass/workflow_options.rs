//! Workflow options `name = ".."` and `version = N`, and a step's stable `name = ".."`:
//! they show up in the definition.
use workflow_core::prelude::*;

struct Billing;

#[workflow(name = "billing", version = 3)]
impl Billing {
    #[step(name = "compute-invoice")]
    async fn compute(&self, cents: u64) -> u64 {
        cents
    }
    #[step(after = compute, retry = 3, backoff = exponential("10ms", "1s"), timeout = "5s")]
    async fn send(&self, cents: u64) -> String {
        format!("sent {cents}")
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let definition = Billing::definition();
    assert_eq!(definition.name, "billing");
    assert_eq!(definition.version, 3);
    assert_eq!(definition.steps[0].name, "compute-invoice");
    assert_eq!(Engine::in_memory().run(&Billing, 5).await.unwrap(), "sent 5");
}
