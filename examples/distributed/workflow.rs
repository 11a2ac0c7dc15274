//! The distributed example's workflow: an order that fans out to two services, joins, and
//! maps over its lines; each step takes a little time and prints which process ran it.

use std::time::Duration;

use workflow_core::prelude::*;
use workflow_core::serde::{Deserialize, Serialize};

/// An order of `lines` items.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "workflow_core::serde")]
pub struct Order {
    pub id: u64,
    pub lines: u32,
}

/// Fulfils an order: `check`, then `reserve` and `charge` in parallel, `pack` every line,
/// `ship`.
#[derive(Clone)]
pub struct Fulfil {
    /// How long each step takes.
    pub step_ms: u64,
}

impl Fulfil {
    async fn work(&self, ctx: &StepContext) {
        tokio::time::sleep(Duration::from_millis(self.step_ms)).await;
        log_step(ctx);
    }
}

/// One line per step on stdout: which process ran which step of which run.
fn log_step(ctx: &StepContext) {
    if std::env::var_os("DISTRIBUTED_QUIET").is_none() {
        println!("[pid {}] {}", std::process::id(), ctx.idempotency_key());
    }
}

#[workflow]
impl Fulfil {
    #[step]
    async fn check(&self, ctx: &StepContext, order: Order) -> Order {
        self.work(ctx).await;
        order
    }

    #[saga_step(after = check, compensation = release)]
    async fn reserve(&self, ctx: &StepContext, order: Order) -> Vec<u32> {
        self.work(ctx).await;
        (0..order.lines).collect()
    }

    #[step(after = check)]
    async fn charge(&self, ctx: &StepContext, order: Order) -> u64 {
        self.work(ctx).await;
        u64::from(order.lines) * 250
    }

    #[step(after = reserve, for_each, concurrency = 4)]
    async fn pack(&self, ctx: &StepContext, line: u32) -> u32 {
        self.work(ctx).await;
        line
    }

    #[step(after = [pack, charge])]
    async fn ship(&self, ctx: &StepContext, packed: Vec<u32>, cents: u64) -> String {
        self.work(ctx).await;
        format!("{} lines packed, {cents} cents charged", packed.len())
    }

    async fn release(&self, _lines: Vec<u32>) -> Result<(), StepError> {
        Ok(())
    }
}
