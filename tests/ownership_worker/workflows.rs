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
