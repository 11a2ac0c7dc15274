//! The worker process of `tests/child_crash.rs`: runs `run-0` .. `run-{RUNS-1}` of
//! [`Shipment`], whose `pack` step runs the child workflow [`Packing`], and is killed (SIGKILL)
//! by the test while the children's steps are in flight, then started again.
//!
//! Usage: `child-crash-worker DB LOG INCARNATION RUNS`
//!
//! Every step appends `<incarnation> <idempotency key>` to LOG (`O_APPEND`, one `write` per
//! line) before it works (300 ms), and returns the incarnation inside its output, so the
//! journal says which execution was committed. At the end it prints `result <run> <value>`
//! per run and `commit <key> <incarnation>` per journaled step output, of the parents and of
//! their children.

use std::fs::OpenOptions;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use workflow_core::prelude::*;
use workflow_core::serde::{Deserialize, Serialize};
use workflow_core::JournalEvent;

static INCARNATION: AtomicU32 = AtomicU32::new(0);
static LOG: OnceLock<String> = OnceLock::new();

/// A step's output: its value, and the incarnation that computed it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(crate = "workflow_core::serde")]
struct Stamp {
    value: u64,
    inc: u32,
}

/// Logs the execution, works, and stamps `value`.
async fn work(ctx: &StepContext, value: u64) -> Stamp {
    let line = format!(
        "{} {}\n",
        INCARNATION.load(Ordering::SeqCst),
        ctx.idempotency_key()
    );
    let path = LOG.get().expect("the log path");
    let mut log = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .expect("the log");
    log.write_all(line.as_bytes()).expect("a log line");
    tokio::time::sleep(Duration::from_millis(300)).await;
    Stamp {
        value,
        inc: INCARNATION.load(Ordering::SeqCst),
    }
}

/// The child: three steps.
#[derive(Default)]
struct Packing;

#[workflow]
impl Packing {
    #[step]
    async fn pick(&self, ctx: &StepContext, item: Stamp) -> Stamp {
        work(ctx, item.value + 1).await
    }
    #[step(after = pick)]
    async fn box_up(&self, ctx: &StepContext, picked: Stamp) -> Stamp {
        work(ctx, picked.value * 2).await
    }
    #[step(after = box_up)]
    async fn label(&self, ctx: &StepContext, boxed: Stamp) -> Stamp {
        work(ctx, boxed.value + 3).await
    }
}

/// The parent: `pack` is the child.
#[derive(Clone)]
struct Shipment;

#[workflow]
impl Shipment {
    #[step]
    async fn prepare(&self, ctx: &StepContext, n: u64) -> Stamp {
        work(ctx, n * 10).await
    }
    #[step(after = prepare, workflow = Packing)]
    async fn pack(&self, prepared: Stamp) -> Stamp;

    #[step(after = pack)]
    async fn dispatch(&self, ctx: &StepContext, packed: Stamp) -> Stamp {
        work(ctx, packed.value).await
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, db, log, incarnation, runs] = &args[..] else {
        eprintln!("usage: child-crash-worker DB LOG INCARNATION RUNS");
        return ExitCode::from(2);
    };
    INCARNATION.store(
        incarnation.parse().expect("an incarnation"),
        Ordering::SeqCst,
    );
    LOG.set(log.clone()).expect("set once");
    let runs: u64 = runs.parse().expect("a run count");
    let engine = Engine::sqlite(db).await.expect("open the store");
    let mut handles = Vec::new();
    for n in 0..runs {
        let handle = engine
            .start_with_id(&Shipment, format!("run-{n}"), n)
            .await
            .expect("start or find the run");
        handles.push(handle);
    }
    let mut status = ExitCode::SUCCESS;
    for handle in handles {
        match handle.wait().await {
            Ok(stamp) => println!("result {} {}", handle.id(), stamp.value),
            Err(error) => {
                println!("failed {} {error}", handle.id());
                status = ExitCode::FAILURE;
            }
        }
        for run in [handle.id().to_string(), format!("~{}/pack", handle.id())] {
            for record in engine
                .journal(&run.as_str().into())
                .await
                .expect("a journal")
            {
                if let JournalEvent::StepCompleted { step, output } = record.event {
                    let stamp: Stamp = serde_json::from_slice(&output).expect("a stamp");
                    println!("commit {run}/{step} {}", stamp.inc);
                }
            }
        }
    }
    status
}
