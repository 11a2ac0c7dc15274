//! The [`Workflow`] trait that `#[workflow]` implements.

use std::any::Any;
use std::sync::Arc;

use crate::context::RunInfo;
use crate::definition::{Definition, StepIndex};
use crate::error::StepError;
use crate::testing::{MockFn, TestPlan};

/// A future returned by a generated step dispatcher.
#[doc(hidden)]
pub type StepFuture<'a, O> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<O, StepError>> + Send + 'a>>;

/// What a step attempt needs to know when it starts.
#[doc(hidden)]
pub struct StartInfo<'r> {
    /// The run.
    pub run: &'r Arc<RunInfo>,
    /// Attempt number, starting at 1.
    pub attempt: u32,
    /// For a signal step: its `Signal<T>`, boxed.
    pub signal: Option<Box<dyn Any + Send>>,
    /// The run's test plan, if any.
    pub plan: Option<&'r TestPlan>,
}

impl StartInfo<'_> {
    /// The mock of `step` from the test plan, if there is one of these types.
    pub fn mock<In: 'static, Out: 'static>(&self, step: StepIndex) -> Option<MockFn<In, Out>> {
        self.plan.and_then(|plan| plan.mock_for(step))
    }
}

/// An encoding or decoding failure of a journaled value.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(pub String);

/// Implemented by `#[workflow]` for every workflow; usable on a durable engine only when the
/// input, every step output, the output and every signal payload are serializable (the
/// `where` clauses of the generated impl say which step is not).
#[diagnostic::on_unimplemented(
    message = "workflow `{Self}` runs on a durable engine, so its input, every step output and every signal payload must implement `Serialize` and `Deserialize`",
    note = "the `required for` notes name the step whose type is not serializable"
)]
pub trait Durable<P = ()>: Workflow {
    #[doc(hidden)]
    fn __encode_input(input: &Self::Input) -> Result<Vec<u8>, CodecError>;
    #[doc(hidden)]
    fn __decode_input(bytes: &[u8]) -> Result<Self::Input, CodecError>;
    #[doc(hidden)]
    fn __encode_output(output: &Self::Output) -> Result<Vec<u8>, CodecError>;
    #[doc(hidden)]
    fn __decode_output(bytes: &[u8]) -> Result<Self::Output, CodecError>;
    #[doc(hidden)]
    fn __encode_out(out: &Self::__Out) -> Result<Vec<u8>, CodecError>;
    #[doc(hidden)]
    fn __decode_out(step: StepIndex, item: usize, bytes: &[u8]) -> Result<Self::__Out, CodecError>;
    #[doc(hidden)]
    fn __encode_signal(
        step: StepIndex,
        payload: &(dyn Any + Send + Sync),
    ) -> Result<Vec<u8>, CodecError>;
    #[doc(hidden)]
    fn __decode_signal(step: StepIndex, bytes: &[u8]) -> Result<Box<dyn Any + Send>, CodecError>;
}

/// A workflow graph: implemented by `#[workflow]` on an `impl` block, never by hand.
///
/// The items whose names start with `__` are the generated dispatcher; they are not public API.
pub trait Workflow: Sized {
    /// What the start steps receive.
    type Input: Send;
    /// What the output step returns.
    type Output: Send;

    /// The static graph: steps, edges, joins, branches, loops, policies and a stable hash.
    fn definition() -> &'static Definition;

    #[doc(hidden)]
    type __State: Send;
    #[doc(hidden)]
    type __Out: Send;
    #[doc(hidden)]
    fn __new_state(input: Self::Input) -> Self::__State;
    #[doc(hidden)]
    fn __start<'a>(
        &'a self,
        state: &mut Self::__State,
        step: StepIndex,
        item: usize,
        info: StartInfo<'_>,
    ) -> StepFuture<'a, Self::__Out>;
    /// Starts the compensation of completion number `completion` (from 0) of saga step `step`.
    #[doc(hidden)]
    fn __compensate<'a>(
        &'a self,
        state: &mut Self::__State,
        step: StepIndex,
        completion: usize,
        info: StartInfo<'_>,
    ) -> Option<StepFuture<'a, ()>>;
    #[doc(hidden)]
    fn __deliver(state: &mut Self::__State, out: Self::__Out) -> Option<u16>;
    #[doc(hidden)]
    fn __for_each_begin(state: &mut Self::__State, step: StepIndex) -> usize;
    #[doc(hidden)]
    fn __for_each_finish(state: &mut Self::__State, step: StepIndex) -> Option<u16>;
    #[doc(hidden)]
    fn __reset(state: &mut Self::__State, step: StepIndex);
    /// `Signal::<T>::TimedOut` for signal step `step`, boxed.
    #[doc(hidden)]
    fn __signal_timed_out(step: StepIndex) -> Option<Box<dyn Any + Send>>;
    #[doc(hidden)]
    fn __take_output(state: &mut Self::__State) -> Option<Self::Output>;
}
