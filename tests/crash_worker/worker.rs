//! The worker process of `tests/crash.rs`: runs a fixed set of durable runs to their end and is
//! killed (SIGKILL) at random moments by the test, then started again, until it finishes.
//!
//! Usage: `crash-worker DB LOG INCARNATION RUNS`
//!
//! - runs `run-0` .. `run-{RUNS-1}` of [`Crashy`] with `execute` (start, resume, or read back the
//!   stored result), all concurrently;
//! - every step, `for_each` item and compensation appends `<incarnation> <kind> <key>` to LOG
//!   (`O_APPEND`, one `write` per line) before doing its work, with its idempotency key;
//! - every step returns the incarnation that executed it inside its output, so the journal says
//!   which incarnation's execution was committed;
//! - at start-up, before running anything, it appends what the journal already holds of
//!   stops and compensations: `<incarnation> snap-stopped <run>`, `<incarnation> snap-comp <key>`;
//! - at the end it prints, from the journals: `result <run> ok <value>` or
//!   `result <run> failed <journaled cause>`, `commit <key> <incarnation>` per output record,
//!   `sagas <run> <steps>` (saga steps in completion order) and
//!   `compensated <run> <compensations>` (in journal order); exit status 0 when every run is
//!   finished.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use workflow_core::prelude::*;
use workflow_core::serde::{Deserialize, Serialize};
use workflow_core::JournalEvent;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(crate = "workflow_core::serde")]
struct Job {
    n: u64,
    fail: bool,
}

/// The output of every step but `gather`: a deterministic value, plus who computed it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(crate = "workflow_core::serde")]
struct Mark {
    key: String,
    inc: u32,
    value: u64,
    fail: bool,
}

/// The output of `gather`: the items of the `for_each`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(crate = "workflow_core::serde")]
struct Batch {
    key: String,
    inc: u32,
    fail: bool,
    items: Vec<u64>,
}

impl IntoIterator for Batch {
    type Item = (u64, bool);
    type IntoIter = std::vec::IntoIter<(u64, bool)>;
    fn into_iter(self) -> Self::IntoIter {
        let fail = self.fail;
        self.items
            .into_iter()
            .map(|x| (x, fail))
            .collect::<Vec<_>>()
            .into_iter()
    }
}

struct Crashy {
    inc: u32,
    log: File,
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x
}

impl Crashy {
    /// The side effect: one appended line, then a short, key-dependent pause (0..=2 ms), so
    /// kills land in every phase of a step.
    async fn effect(&self, kind: &str, ctx: &StepContext) -> String {
        let key = ctx.idempotency_key();
        let line = format!("{} {kind} {key}\n", self.inc);
        (&self.log)
            .write_all(line.as_bytes())
            .expect("append to the side-effect log");
        (&self.log).flush().expect("flush the side-effect log");
        let h = key
            .bytes()
            .fold(u64::from(self.inc), |h, b| mix(h ^ u64::from(b)));
        let micros = h % 2_500;
        if micros > 300 {
            tokio::time::sleep(Duration::from_micros(micros)).await;
        } else {
            tokio::task::yield_now().await;
        }
        key
    }

    fn mark(&self, key: String, value: u64, fail: bool) -> Mark {
        Mark {
            key,
            inc: self.inc,
            value,
            fail,
        }
    }
}

#[workflow]
impl Crashy {
    #[step]
    async fn start(&self, ctx: &StepContext, job: Job) -> Mark {
        let key = self.effect("step", ctx).await;
        self.mark(key, job.n * 7 + 1, job.fail)
    }

    #[step(after = start)]
    async fn prepare(&self, ctx: &StepContext, m: Mark) -> Mark {
        let key = self.effect("step", ctx).await;
        self.mark(key, m.value * 3, m.fail)
    }

    #[saga_step(after = prepare, compensation = undo_left)]
    async fn left(&self, ctx: &StepContext, m: Mark) -> Mark {
        let key = self.effect("step", ctx).await;
        self.mark(key, m.value + 11, m.fail)
    }

    #[step(after = prepare)]
    async fn middle(&self, ctx: &StepContext, m: Mark) -> Mark {
        let key = self.effect("step", ctx).await;
        self.mark(key, m.value + 13, m.fail)
    }

    #[saga_step(after = prepare, compensation = undo_right)]
    async fn right(&self, ctx: &StepContext, m: Mark) -> Mark {
        let key = self.effect("step", ctx).await;
        self.mark(key, m.value + 17, m.fail)
    }

    #[step(after = [left, middle, right])]
    async fn gather(&self, ctx: &StepContext, l: Mark, m: Mark, r: Mark) -> Batch {
        let key = self.effect("step", ctx).await;
        Batch {
            key,
            inc: self.inc,
            fail: l.fail,
            items: (0..10)
                .map(|i| l.value * i + m.value + r.value * (i % 3))
                .collect(),
        }
    }

    #[step(after = gather, for_each, concurrency = 4)]
    async fn work(&self, ctx: &StepContext, item: (u64, bool)) -> Mark {
        let key = self.effect("item", ctx).await;
        self.mark(key, item.0 * item.0 % 1_000_003, item.1)
    }

    #[saga_step(after = work, compensation = undo_total)]
    async fn total(&self, ctx: &StepContext, marks: Vec<Mark>) -> Mark {
        let key = self.effect("step", ctx).await;
        let value = marks
            .iter()
            .fold(17u64, |acc, m| acc.wrapping_mul(31).wrapping_add(m.value));
        self.mark(key, value, marks.first().is_some_and(|m| m.fail))
    }

    #[step(after = total)]
    async fn finish(&self, ctx: &StepContext, m: Mark) -> Result<Mark, StepError> {
        let key = self.effect("step", ctx).await;
        if m.fail {
            return Err(StepError::permanent(StepError::msg(format!(
                "{key} refused"
            ))));
        }
        Ok(self.mark(key, m.value % 1_000_000_007, false))
    }

    async fn undo_left(&self, ctx: &StepContext, _m: Mark) {
        self.effect("comp", ctx).await;
    }

    async fn undo_right(&self, ctx: &StepContext, _m: Mark) {
        self.effect("comp", ctx).await;
    }

    async fn undo_total(&self, ctx: &StepContext, _m: Mark) {
        self.effect("comp", ctx).await;
    }
}

fn compensation_name(step: &str) -> &'static str {
    Crashy::definition()
        .step(step)
        .and_then(|s| s.compensation)
        .map_or("?", |c| c.name)
}

/// The key a step's (or item's) output record must carry.
fn expected_key(run: &str, name: &str, item: Option<u64>) -> String {
    match item {
        Some(i) => format!("{run}/{name}/{i}"),
        None => format!("{run}/{name}"),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, db, log, inc, runs] = args.as_slice() else {
        eprintln!("usage: crash-worker DB LOG INCARNATION RUNS");
        return ExitCode::from(2);
    };
    let inc: u32 = inc.parse().expect("INCARNATION is a number");
    let runs: u64 = runs.parse().expect("RUNS is a number");
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open the side-effect log");
    let engine = Engine::sqlite(db).await.expect("open the store");
    let workflow = Arc::new(Crashy { inc, log });
    let ids: Vec<RunId> = (0..runs).map(|i| RunId::from(format!("run-{i}"))).collect();

    // What earlier incarnations committed of stops and compensations.
    for id in &ids {
        let records = engine.journal(id).await.unwrap_or_default();
        let mut snapshot = String::new();
        for record in &records {
            match &record.event {
                JournalEvent::Stopped { .. } => {
                    snapshot.push_str(&format!("{inc} snap-stopped {id}\n"))
                }
                JournalEvent::Compensated { step, .. } => snapshot.push_str(&format!(
                    "{inc} snap-comp {id}/{}\n",
                    compensation_name(step)
                )),
                _ => {}
            }
        }
        (&workflow.log)
            .write_all(snapshot.as_bytes())
            .expect("append to the log");
    }

    let mut tasks = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let (engine, workflow, id) = (engine.clone(), workflow.clone(), id.clone());
        let job = Job {
            n: i as u64,
            fail: i % 3 == 1,
        };
        tasks.push(tokio::spawn(async move {
            engine
                .execute(&*workflow, id, Some(job), RunOptions::default())
                .await
                .result
        }));
    }
    let mut all_finished = true;
    let mut out = String::new();
    for (id, task) in ids.iter().zip(tasks) {
        let result = task.await.expect("run task panicked");
        let record = engine.status(id).await.expect("status");
        let journal = engine.journal(id).await.expect("journal");
        if !record.summary.status.is_finished() {
            all_finished = false;
            eprintln!("run {id} not finished: {result:?}");
        }
        match (&result, record.summary.status) {
            (Ok(mark), RunStatus::Completed) => {
                out.push_str(&format!("result {id} ok {}\n", mark.value))
            }
            (Err(error), RunStatus::Failed) => {
                let causes: Vec<String> = journal
                    .iter()
                    .filter_map(|r| match &r.event {
                        JournalEvent::Stopped { cause } => Some(cause.clone()),
                        _ => None,
                    })
                    .collect();
                match causes.as_slice() {
                    [cause] => out.push_str(&format!("result {id} failed {cause}\n")),
                    _ => out.push_str(&format!(
                        "result {id} failed-with-{}-stop-records {error}\n",
                        causes.len()
                    )),
                }
            }
            (result, status) => {
                out.push_str(&format!("result {id} unexpected {status:?} {result:?}\n"))
            }
        }
        let mut sagas = Vec::new();
        let mut compensated = Vec::new();
        for record in &journal {
            let (step, item, output) = match &record.event {
                JournalEvent::StepCompleted { step, output } => (step, None, output),
                JournalEvent::ItemCompleted { step, item, output } => (step, Some(*item), output),
                JournalEvent::Compensated { step, .. } => {
                    compensated.push(compensation_name(step));
                    continue;
                }
                _ => continue,
            };
            let value: serde_json::Value =
                serde_json::from_slice(output).expect("an output record is JSON");
            let key = value["key"].as_str().unwrap_or("?");
            let committed_by = value["inc"].as_u64().unwrap_or(u64::MAX);
            let expected = expected_key(id.as_str(), step, item);
            if key != expected {
                out.push_str(&format!(
                    "mismatch {id} record #{} holds {key}, expected {expected}\n",
                    record.seq
                ));
            }
            out.push_str(&format!("commit {key} {committed_by}\n"));
            if let Some(def) = Crashy::definition()
                .step(step)
                .filter(|s| s.compensation.is_some())
            {
                sagas.push(def.name);
            }
        }
        out.push_str(&format!("sagas {id} {}\n", sagas.join(",")));
        out.push_str(&format!("compensated {id} {}\n", compensated.join(",")));
    }
    print!("{out}");
    if all_finished {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
