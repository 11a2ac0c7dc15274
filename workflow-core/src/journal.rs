//! The scheduler's view of durability: what it journals while a run goes, and what a resumed
//! run replays. Implemented by the durable engine over a [`crate::store::Store`]; the
//! in-memory engine has no journal.

use std::any::Any;
use std::time::SystemTime;

use futures::future::BoxFuture;

use crate::definition::StepIndex;
use crate::store::{RecordKind, StoreError};

/// A journal record decoded for replay, in journal order.
pub(crate) enum Replayed<O> {
    /// A step (or `for_each` item) completed with this output.
    Output {
        step: StepIndex,
        item: Option<usize>,
        out: O,
    },
    /// A step consumed this signal (empty bytes: its deadline passed).
    Signal { step: StepIndex, bytes: Vec<u8> },
    /// A step began waiting for its signal at this time.
    WaitStarted { step: StepIndex, at: SystemTime },
    /// The run stopped early for this reason; compensation began.
    Stopped { cause: String },
    /// The compensation of this saga completion finished.
    Compensated { step: StepIndex, completion: usize },
}

/// Journaling of one run. Every write is committed when its future resolves.
pub(crate) trait Journal<O>: Send {
    /// Commits a step's output before it is handed downstream.
    fn record_output(
        &mut self,
        step: StepIndex,
        item: Option<usize>,
        out: &O,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Commits any other record.
    fn record(
        &mut self,
        kind: RecordKind,
        step: StepIndex,
        item: Option<u64>,
        payload: Vec<u8>,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Resolves with `true` once signal `name` is stored for the run, or `false` at `deadline`.
    fn signal_ready(
        &self,
        name: &'static str,
        deadline: Option<SystemTime>,
    ) -> BoxFuture<'static, Result<bool, StoreError>>;

    /// Consumes the oldest stored signal `name` for `step`, journaling it in the same
    /// transaction; returns its encoded payload, or `None` if there is none.
    fn consume_signal(
        &mut self,
        step: StepIndex,
        name: &'static str,
    ) -> BoxFuture<'_, Result<Option<Vec<u8>>, StoreError>>;

    /// Decodes a signal payload into the step's boxed `Signal<T>`.
    fn decode_signal(
        &self,
        step: StepIndex,
        bytes: &[u8],
    ) -> Result<Box<dyn Any + Send>, StoreError>;

    /// Marks the run waiting for the named signals (`None`: running again).
    fn set_waiting(&mut self, waiting_for: Option<String>)
        -> BoxFuture<'_, Result<(), StoreError>>;
}
