//! # workflow-core
//!
//! Workflows as ordinary `impl` blocks: `#[workflow]` turns the block into a graph that rustc
//! checks (unknown steps, cycles, joins that can never fire, branches that miss a case, wrong
//! types between steps) and [`Engine`] runs it on tokio, starting every step
//! the moment its inputs are ready.
//!
//! ```
//! use workflow_core::prelude::*;
//!
//! struct Checkout;
//!
//! #[workflow]
//! impl Checkout {
//!     #[step]
//!     async fn validate(&self, order: u32) -> Result<u32, StepError> {
//!         if order == 0 { Err(StepError::msg("empty order")) } else { Ok(order) }
//!     }
//!     #[step(after = validate)]
//!     async fn reserve(&self, order: u32) -> String { format!("stock for {order}") }
//!     #[step(after = validate)]
//!     async fn charge(&self, order: u32) -> u64 { u64::from(order) * 100 }
//!     #[step(after = [reserve, charge])]
//!     async fn ship(&self, stock: String, paid: u64) -> String { format!("{stock}, paid {paid}") }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let shipped = Engine::in_memory().run(&Checkout, 3).await.unwrap();
//! assert_eq!(shipped, "stock for 3, paid 300");
//! # }
//! ```
//!
//! ## The DSL
//!
//! - `#[workflow]` on an inherent `impl` block (options: `name = ".."`, `version = N`,
//!   `crate = path` for re-exporters).
//! - `#[step]` on an `async fn` taking `&self`, an optional leading `&StepContext`, then its
//!   inputs. A step returns `Result<T, E>` for any `E: std::error::Error + Send + Sync`
//!   (or [`StepError`]), or a plain `T`. The engine polls a step's future on the run's own
//!   task (nothing is spawned per step).
//! - Keys of `#[step(...)]`:
//!   - no `after`: a start step; it receives the workflow input;
//!   - `after = a`, `after = [a, b]` (waits for all, receives their outputs in that order),
//!     `after = any(a, b)` (runs exactly once, with the first output to arrive; later arrivals
//!     are dropped), `after = first(a, b)` (the same, and the losers are cancelled: each losing
//!     racer, with the steps upstream of it that lead only to racers, is dropped if in flight
//!     and never started if waiting, and its completed saga steps are compensated while the
//!     run goes on; no other step may consume a racer's output);
//!   - `branch = PATTERN` (single upstream): the edge is taken only when the upstream's output
//!     matches; the step receives the pattern's bindings in order (lowercase identifiers are
//!     bindings, capitalised ones are constants or unit variants). The branches of one upstream
//!     form one `match`, which rustc checks for exhaustiveness;
//!   - `for_each` (+ `concurrency = N`): the step runs once per item of its upstream's output
//!     (any `IntoIterator`); downstream steps receive a `Vec` of the results in item order.
//!     With `item_results`, they receive `Vec<Result<T, StepError>>`: an item that fails for
//!     good (after its retries) is handed on as its error, and the other items go on;
//!   - `max_passes = N` on the head of a loop: a step listed in the head's
//!     `after = any(entry, back)` that is itself downstream of the head is a back edge;
//!     each back edge starts a new pass (the loop body's steps run again). `N` counts passes
//!     through the loop, the first included: the head runs at most `N` times, so the back
//!     edge fires at most `N - 1` times; a back edge that would start pass `N + 1` fails the
//!     run with [`WorkflowError::LoopLimitExceeded`];
//!   - `output`: this step's output is the workflow's output (needed when two terminal steps
//!     can both run);
//!   - `name = ".."`: the step's stable name in the definition and diagrams;
//!   - `retry = N`, `backoff = "100ms"` or `backoff = exponential("100ms", "10s")`,
//!     `timeout = "10s"` (per attempt; the attempt's future is dropped when it expires);
//!   - `on_failure = method`: a fallback. When the step fails for good (after its retries),
//!     `async fn method(&self, error: StepError) -> T` (or `-> Result<T, E>`) gives the step's
//!     output `T` instead, and the run goes on as if the step had succeeded; the history
//!     ([`StepRecord::fell_back`]) and the events ([`RunEvent::FellBack`]) say so. A durable
//!     run journals the fallback's output like the step's, so it does not run again.
//!
//! ## Durable runs
//!
//! [`Engine::sqlite`] opens (or creates) an SQLite file and returns a [`DurableEngine`]: every
//! step output is committed to a journal before it is handed downstream, and a run interrupted
//! by a crash resumes ([`DurableEngine::recover`], [`DurableEngine::resume`]) without running
//! again a step whose result was committed. The same workflow code runs in memory and on the
//! durable engine; the durable engine additionally needs the input, every step output and every
//! signal payload to be `Serialize + Deserialize` (a compile error names the step otherwise).
//! Derive them through the re-export: `#[derive(workflow_core::serde::Serialize)]` with
//! `#[serde(crate = "workflow_core::serde")]`, or depend on serde yourself. See
//! [`DurableEngine`] for the guarantees.
//!
//! ## Runs: one verb set on every engine
//!
//! [`Engine`] (in memory) and [`DurableEngine`] (SQLite, PostgreSQL) have the same verbs:
//! `run(&workflow, input)`, `run_with(&workflow, input, RunOptions)` (deadline, cancel token,
//! caller-chosen id, queue; returns the result and the history), `start(&workflow, input)`
//! and `start_with_id(&workflow, id, input)` returning a [`RunHandle`], and
//! `handle::<W>(id)` to reattach (from any process, on a durable store). A handle waits
//! ([`RunHandle::wait`] returns the same structured [`WorkflowError`] as `run`: the failed
//! step, its cause, the compensations), reports [`RunHandle::status`], cancels, and sends
//! typed signals: `run.signal(Expense::signals().decision, Decision::Approve)` checks the
//! signal's name and payload type at compile time. [`RunHandle::signal_json`] is the untyped
//! entry point for a command line or an HTTP endpoint: a bad name or payload is refused before
//! anything is stored.
//!
//! ## Changing a workflow with runs in flight
//!
//! A run resumes only under a definition with the hash it started with
//! ([`Definition::hash`], over [`Definition::canonical`]). What changes the hash is what makes
//! an old journal unreadable: the graph (steps, `after`, joins, branch patterns, `for_each`,
//! loops, output steps), step names, the input, output and signal types of steps, and
//! compensations. What does not: `retry`, `backoff`, `timeout`, signal `deadline`,
//! `concurrency`, `max_passes`, `compensation_retry`; their new values apply to runs in
//! flight at their next step.
//!
//! - **Safe**: changing a tunable; changing a step's body (its next executions use the new
//!   code; committed results are not re-run); adding a workflow.
//! - **Needs a new definition**: anything else. Give it a new `version = N` and deploy it
//!   beside the old one: workers claim only runs of the definitions they registered, so runs
//!   of the old definition wait for (or keep running on) workers that still have it and are
//!   never failed. A worker asked to resume a run of another definition refuses it with
//!   [`WorkflowError::VersionMismatch`], whose `changes` name each step that differs and how
//!   (e.g. ``step `charge`: returns `u32` -> `String` ``), read from the definition the store
//!   kept when the run started.
//! - **Draining**: keep one worker with the old definition until
//!   `engine.list(&RunFilter { workflow: Some(..), .. })` shows no unfinished run of the old
//!   hash, then retire it.
//!
//! ## Workers: runs owned through the store
//!
//! The store owns every run; every [`DurableEngine`] is also a worker ([`WorkerOptions`]).
//! [`DurableEngine::register`] (or `start`/`recover`) tells the worker which workflows it can
//! execute; it then claims ready runs of those definitions with a lease and a fencing epoch,
//! heartbeats, and takes over the runs of workers whose lease expired. Any number of
//! processes may share one SQLite file (or, with the `postgres` feature, one PostgreSQL
//! database from many machines): each run executes in exactly one place at a time, and a
//! worker that lost a run's lease writes nothing more for it. A run waiting for a signal is
//! parked in the store (no claim, no memory) until the signal, its deadline or a cancel wakes
//! it. Runs may be started on named queues whose concurrency and rate limits
//! ([`store::QueueConfig`]) hold across all workers.
//!
//! ```no_run
//! use workflow_core::prelude::*;
//!
//! #[derive(Clone)]
//! struct Report;
//!
//! #[workflow]
//! impl Report {
//!     #[step]
//!     async fn render(&self, n: u32) -> String { format!("report {n}") }
//! }
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A worker process: executes runs of `Report`, whichever process started them.
//! let worker = Engine::sqlite("runs.db").await?;
//! worker.register(&Report).await?;
//!
//! // A client process: starts a run and waits for its result.
//! let client = DurableEngine::with_options(
//!     workflow_core::store::SqliteStore::open("runs.db").await?,
//!     WorkerOptions::default().claim_runs(false),
//! );
//! let run = client.start_with_id(&Report, "report-1", 7).await?;
//! assert_eq!(run.wait().await?, "report 7");
//! // Any process can reattach to it by id.
//! let again = client.handle::<Report>("report-1");
//! assert_eq!(again.status().await?, RunStatus::Completed);
//! # Ok(()) }
//! ```
//!
//! ## Semantics
//!
//! - Scheduling is eager: no superstep barrier. The steps of one run are polled concurrently
//!   on the run's task (like `join_all`); a step doing CPU-heavy work should use
//!   `tokio::task::spawn_blocking` so it does not hold back its siblings.
//! - A step whose upstream branch was not taken is skipped, and so is everything that needs
//!   it; an `any` join runs if any of its upstreams ran. A run ends when nothing is running
//!   or ready.
//! - An output consumed by several downstream steps is cloned for all but the last one, so it
//!   must implement `Clone` (the compile error says which step needs it). A step with
//!   `retry` keeps its input to give each attempt a fresh clone.
//! - A panicking step is a failed step. A step that fails for good fails the run with
//!   [`WorkflowError::StepFailed`], naming the workflow,
//!   the run and the step; the run's other in-flight steps are dropped.
//! - Outside a loop a step runs at most once; inside a loop, at most once per iteration.
//!   Results of an abandoned iteration's steps that were still in flight are dropped. Edges
//!   cross a loop's boundary only through the head's entry (in) and branches (out); anything
//!   else is a compile error, since the two sides run a different number of times.
//! - `#[saga_step(compensation = method, compensation_retry = N)]`: when the run stops early
//!   (a step failed for good, a loop bound, cancellation, a deadline), in-flight steps are
//!   dropped and every completed saga step is compensated in reverse completion order, parallel
//!   branches included. The compensation gets a clone of the step's output (so it must be
//!   `Clone`), is retried (2 retries with backoff by default), and one that still fails is
//!   reported in the error's [`FailureReport`] without stopping the others. A saga step with
//!   `for_each` is compensated per completed item, in reverse completion order.
//! - A trailing `name: Signal<T>` parameter makes a step wait for the signal `name`
//!   (`deadline = "48h"` bounds the wait; the step then receives [`Signal::TimedOut`]). The
//!   wait is a graph boundary: on a durable engine it is persisted, survives restarts, and each
//!   signal ([`RunHandle::signal`]) is consumed exactly once, even if sent before the wait.
//! - [`StepContext::run_child`] runs another workflow as part of a step, with its input and
//!   output checked by rustc; on a durable engine the child is journaled under the parent's
//!   deterministic id, so a parent that crashes never starts the child twice.
//! - [`RunOptions`] with [`Engine::run_with`]: a deadline for the
//!   whole run and a [`CancellationToken`]. Timers (`timeout`, `backoff`, deadlines) need a tokio
//!   runtime; a workflow without them runs on any executor.

#![warn(missing_docs)]

mod bulk;
mod canonical_text;
mod child;
mod context;
#[cfg(feature = "dashboard")]
pub mod dashboard;
mod definition;
mod definition_changes;
mod diagram;
mod durable;
mod engine;
mod error;
mod event_feed;
mod events;
mod for_each;
mod handle;
mod history;
mod journal;
mod memory;
mod options;
pub mod otel;
pub mod prelude;
mod report;
mod retry;
mod run_id;
mod scheduler;
mod signal;
mod step_flow;
pub mod store;
mod stored_error;
mod task;
pub mod testing;
mod worker;
mod workflow;

#[doc(hidden)]
pub mod __private;

pub use bulk::{BulkItem, BulkRun, BulkTotals};
pub use canonical_text::CanonicalStep;
pub use context::StepContext;
pub use definition::{
    Backoff, ChildDef, Compensation, Definition, Edge, ForEach, Join, LoopHead, Policy, SignalDef,
    StepDef, StepIndex,
};
pub use durable::{DurableEngine, Fencing, Recovery};
pub use engine::{Engine, Finished};
pub use error::{StepError, WorkflowError};
pub use event_feed::EngineEvent;
pub use events::RunEvent;
pub use handle::{RunHandle, SignalName};
pub use history::{RunHistory, StepOutcome, StepRecord};
pub use journal::{EncodedEvent, EventDecodeError, JournalEvent};
pub use options::{CancellationToken, RunOptions, StepName};
pub use report::{CompensationRecord, FailureReport};
pub use retry::{plan_retry, retry_from, RetryPlan};
pub use run_id::RunId;
pub use signal::Signal;
pub use worker::WorkerOptions;
pub use workflow::Workflow;
pub use workflow::{CodecError, Durable, SignalFree};
pub use workflow_macros::{saga_step, step, workflow};

/// Serde, re-exported so workflows can derive `Serialize`/`Deserialize` without depending on it:
/// `#[derive(workflow_core::serde::Serialize)] #[serde(crate = "workflow_core::serde")]`.
pub use serde;

/// Schemars, re-exported so signal payloads can derive `JsonSchema` without depending on it:
/// `#[derive(workflow_core::schemars::JsonSchema)] #[schemars(crate = "workflow_core::schemars")]`.
/// A payload that does gets its schema stored with the workflow's definition, and the
/// `workflow` command line refuses a signal that does not match it.
pub use schemars;
