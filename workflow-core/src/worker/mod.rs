//! The worker inside every [`crate::DurableEngine`]: it registers with the store, heartbeats,
//! takes over runs whose owner's lease expired, claims runs of the workflows registered with
//! it (up to a limit), and reacts to cancels sent by any process.
//!
//! Two background tasks do this, both holding only a weak reference to the engine:
//! - the heartbeat loop extends the worker's lease every `heartbeat` interval, cancels the
//!   runs whose cancel was requested, and runs the takeover sweep. If no heartbeat succeeded
//!   for `lease - 2 x heartbeat`, or the store says the worker was reaped, the worker fences
//!   itself: every run it executes stops at once (nothing more is written) and it registers
//!   again under a new id;
//! - the claim loop claims ready and due runs, polling at intervals growing from 50 ms to 1 s,
//!   and at once when this process starts or signals a run, or a run ends while it was full.
//!   After a claim or release whose outcome is unknown (the commit may have happened, its reply
//!   was lost), it gives back every run the store says this worker claimed and that nothing
//!   here executes, so no run stays claimed by a live worker that does not run it.

mod claimed;
mod loops;
mod options;
mod real_clock;
mod registry;

pub(crate) use claimed::ClaimedRuns;
pub(crate) use loops::{register, spawn_loops, sweep, Identity};
pub use options::WorkerOptions;
pub(crate) use registry::{Registry, Runner};
