//! The journal of a durable run: [`JournalEvent`], the one typed enum of journaled facts with
//! its codec, and the scheduler's view of durability (what it journals while a run goes, what a
//! resumed run replays). The durable engine implements [`Journal`] over a
//! [`crate::store::Store`]; the in-memory engine journals nothing, and implements it only to
//! deliver signals to runs started with a handle (`crate::memory`).

mod event;

pub use event::{EncodedEvent, EventDecodeError, JournalEvent};

use std::any::Any;
use std::time::SystemTime;

use futures::future::BoxFuture;

use crate::definition::StepIndex;
use crate::store::StoreError;

/// What a signal step got: its signal's payload, or the end of its deadline.
#[derive(Clone)]
pub(crate) enum SignalOutcome {
    Received(SignalPayload),
    TimedOut,
}

/// A signal's payload as a journal holds it.
#[derive(Clone)]
pub(crate) enum SignalPayload {
    /// Encoded (durable engines): decoded for each attempt of the step.
    Encoded(Vec<u8>),
    /// In memory: makes the step's boxed `Signal<T>` for each attempt (a clone of the value).
    Value(std::sync::Arc<dyn Fn() -> Box<dyn Any + Send> + Send + Sync>),
}

/// A journal record decoded for replay, in journal order.
pub(crate) enum Replayed<O> {
    /// A step (or `for_each` item) completed with this output.
    Output {
        step: StepIndex,
        item: Option<usize>,
        out: O,
    },
    /// A signal step's wait ended.
    Signal {
        step: StepIndex,
        outcome: SignalOutcome,
    },
    /// A step began waiting for its signal at this time.
    WaitStarted { step: StepIndex, at: SystemTime },
    /// A failed attempt's retry (attempt number `attempt`) is due at `due`.
    RetryScheduled {
        step: StepIndex,
        item: usize,
        attempt: u32,
        due: SystemTime,
    },
    /// The run stopped early for this reason; compensation began.
    Stopped { cause: String },
    /// The compensation of this saga completion finished.
    Compensated { step: StepIndex, completion: usize },
}

/// A journal decoded for replay: each record with its position.
pub(crate) type Replay<O> = Vec<(u64, Replayed<O>)>;

/// The commit of a queued journal write: resolves when the write is committed.
pub(crate) type Commit = BoxFuture<'static, Result<(), StoreError>>;

/// Journaling of one run. Every write is committed when its future resolves; a write the
/// store refuses because the run's lease moved on fails with [`StoreError::LeaseLost`].
pub(crate) trait Journal<O>: Send {
    /// Queues the record of a step's output, which is handed downstream once the returned
    /// commit resolves (`None`: nothing to wait for). Queued writes commit in the order they
    /// were queued, so the run goes on while they are in flight. A value the journal would not
    /// read back is refused at once with [`StoreError::Unstorable`].
    fn record_output(
        &mut self,
        step: StepIndex,
        item: Option<usize>,
        out: &O,
    ) -> Result<Option<Commit>, StoreError>;

    /// Commits any other event.
    fn record(&mut self, event: JournalEvent) -> BoxFuture<'_, Result<(), StoreError>>;

    /// True when an unconsumed signal `name` is stored for the run.
    fn has_signal(&self, name: &'static str) -> BoxFuture<'static, Result<bool, StoreError>>;

    /// Resolves with `true` once signal `name` is stored for the run, or `false` at `deadline`.
    fn signal_ready(
        &self,
        name: &'static str,
        deadline: Option<SystemTime>,
    ) -> BoxFuture<'static, Result<bool, StoreError>>;

    /// Consumes the oldest stored signal `name` for `step`, journaling it in the same
    /// transaction; returns its payload, or `None` if there is none.
    fn consume_signal(
        &mut self,
        step: StepIndex,
        name: &'static str,
    ) -> BoxFuture<'_, Result<Option<SignalPayload>, StoreError>>;

    /// Decodes a signal payload into the step's boxed `Signal<T>`.
    fn decode_signal(
        &self,
        step: StepIndex,
        bytes: &[u8],
    ) -> Result<Box<dyn Any + Send>, StoreError>;

    /// Notes in the store which signals the run waits for (`None`: none any more).
    fn set_waiting(&mut self, waiting_for: Option<String>)
        -> BoxFuture<'_, Result<(), StoreError>>;

    /// True when a run whose only work left is waiting for signals should be parked (its
    /// claim released, nothing kept in memory) rather than wait in this process.
    fn parks_waits(&self) -> bool;
}
