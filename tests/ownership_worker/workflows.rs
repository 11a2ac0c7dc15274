//! Workflows of the ownership tests, shared by the worker process
//! (`tests/ownership_worker/worker.rs`) and the tests that start, signal and cancel their runs
//! (`tests/ownership.rs`). Every step body appends `<pid> <event> <idempotency key>` to a
//! side-effect log written outside the store, so the tests can count executions per process.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use workflow_core::prelude::*;

/// Appends one line to the side-effect log (`O_APPEND`: lines of concurrent processes do not
/// interleave).
pub fn log(path: &PathBuf, event: &str, key: &str) {
    let line = format!("{} {event} {key}\n", std::process::id());
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open the side-effect log");
    file.write_all(line.as_bytes())
        .expect("append to the side-effect log");
}

/// A chain with a slow middle step: `begin`, `hold` (logs `start`, sleeps `hold_ms`, logs
/// `end`), `finish`. The output names the process that executed `hold`.
#[derive(Clone)]
pub struct Hold {
    pub log: PathBuf,
    pub hold_ms: u64,
}

#[workflow]
impl Hold {
    #[step]
    async fn begin(&self, ctx: &StepContext, n: u64) -> u64 {
        log(&self.log, "run", &ctx.idempotency_key());
        n
    }

    #[step(after = begin)]
    async fn hold(&self, ctx: &StepContext, n: u64) -> String {
        log(&self.log, "start", &ctx.idempotency_key());
        tokio::time::sleep(Duration::from_millis(self.hold_ms)).await;
        log(&self.log, "end", &ctx.idempotency_key());
        format!("{n} held by {}", std::process::id())
    }

    #[step(after = hold)]
    async fn finish(&self, ctx: &StepContext, held: String) -> String {
        log(&self.log, "run", &ctx.idempotency_key());
        held
    }
}

/// A saga: `book` (undone by `unbook`), then `travel`, which takes `travel_ms`.
#[derive(Clone)]
pub struct Trip {
    pub log: PathBuf,
    pub travel_ms: u64,
}

#[workflow]
impl Trip {
    #[saga_step(compensation = unbook)]
    async fn book(&self, ctx: &StepContext, n: u64) -> u64 {
        log(&self.log, "run", &ctx.idempotency_key());
        n
    }

    #[step(after = book)]
    async fn travel(&self, ctx: &StepContext, n: u64) -> u64 {
        log(&self.log, "start", &ctx.idempotency_key());
        tokio::time::sleep(Duration::from_millis(self.travel_ms)).await;
        log(&self.log, "end", &ctx.idempotency_key());
        n
    }

    async fn unbook(&self, ctx: &StepContext, _n: u64) -> Result<(), StepError> {
        log(&self.log, "compensate", &ctx.idempotency_key());
        Ok(())
    }
}

/// Every shape of the graph at once, for the soak test: a chain, a parallel pair joined both
/// ways (all and any), a `for_each`, two saga steps and a signal wait. Approved runs complete;
/// rejected ones fail in `approve` and undo both saga steps. Every body logs `start` and `end`
/// under its idempotency key; outputs depend only on the input, so every run's result can be
/// compared with an uninterrupted run's.
#[derive(Clone)]
pub struct Soak {
    pub log: PathBuf,
    pub step_ms: u64,
}

impl Soak {
    async fn work(&self, ctx: &StepContext) {
        log(&self.log, "start", &ctx.idempotency_key());
        tokio::time::sleep(Duration::from_millis(self.step_ms)).await;
        log(&self.log, "end", &ctx.idempotency_key());
    }
}

#[workflow]
impl Soak {
    #[step]
    async fn begin(&self, ctx: &StepContext, n: u64) -> u64 {
        self.work(ctx).await;
        n
    }

    #[step(after = begin)]
    async fn left(&self, ctx: &StepContext, n: u64) -> u64 {
        self.work(ctx).await;
        n + 1
    }

    #[step(after = begin)]
    async fn right(&self, ctx: &StepContext, n: u64) -> u64 {
        self.work(ctx).await;
        n + 2
    }

    #[step(after = [left, right])]
    async fn both(&self, ctx: &StepContext, l: u64, r: u64) -> Vec<u64> {
        self.work(ctx).await;
        (0..3).map(|i| l + r + i).collect()
    }

    #[step(after = any(left, right))]
    async fn first(&self, ctx: &StepContext, x: u64) -> u64 {
        self.work(ctx).await;
        x % 2
    }

    #[step(after = both, for_each, concurrency = 2)]
    async fn item(&self, ctx: &StepContext, x: u64) -> u64 {
        self.work(ctx).await;
        x * 10
    }

    #[saga_step(after = first, compensation = release)]
    async fn reserve(&self, ctx: &StepContext, parity: u64) -> u64 {
        self.work(ctx).await;
        parity
    }

    #[saga_step(after = item, compensation = refund)]
    async fn charge(&self, ctx: &StepContext, items: Vec<u64>) -> u64 {
        self.work(ctx).await;
        items.iter().sum()
    }

    #[step(after = [reserve, charge])]
    async fn approve(
        &self,
        ctx: &StepContext,
        _parity: u64,
        total: u64,
        approval: Signal<bool>,
    ) -> Result<String, StepError> {
        self.work(ctx).await;
        match approval.received() {
            Some(true) => Ok(format!("charged {total}")),
            _ => Err(StepError::permanent(StepError::msg("rejected"))),
        }
    }

    async fn release(&self, ctx: &StepContext, _parity: u64) -> Result<(), StepError> {
        log(&self.log, "compensate", &ctx.idempotency_key());
        Ok(())
    }

    async fn refund(&self, ctx: &StepContext, _total: u64) -> Result<(), StepError> {
        log(&self.log, "compensate", &ctx.idempotency_key());
        Ok(())
    }
}

/// Version 2 of [`Hold`], as a rolling deploy brings it: one more step, so another definition
/// hash. Workers that have only one of the two claim only runs of that one.
#[derive(Clone)]
pub struct HoldV2 {
    pub log: PathBuf,
    pub hold_ms: u64,
}

#[workflow(name = "Hold", version = 2)]
impl HoldV2 {
    #[step]
    async fn begin(&self, ctx: &StepContext, n: u64) -> u64 {
        log(&self.log, "run", &ctx.idempotency_key());
        n
    }

    #[step(after = begin)]
    async fn hold(&self, ctx: &StepContext, n: u64) -> String {
        log(&self.log, "start", &ctx.idempotency_key());
        tokio::time::sleep(Duration::from_millis(self.hold_ms)).await;
        log(&self.log, "end", &ctx.idempotency_key());
        format!("{n} held by {} (v2)", std::process::id())
    }

    #[step(after = hold)]
    async fn audit(&self, ctx: &StepContext, held: String) -> String {
        log(&self.log, "run", &ctx.idempotency_key());
        held
    }
}
