//! Items used by the code `#[workflow]` generates. Not public API: no stability guarantee.

pub use crate::child::{child_step, durable_child, DurableChild, DurableChildWorkflow};
pub use crate::context::{RunInfo, StepContext};
pub use crate::definition::{
    Backoff, ChildDef, Compensation, Definition, Edge, ForEach, Join, LoopHead, Policy, SignalDef,
    StepDef, StepIndex,
};
pub use crate::error::StepError;
pub use crate::for_each::ForEachSlot;
pub use crate::handle::SignalName;
pub use crate::signal::Signal;
pub use crate::step_flow::FlowTable;
use crate::testing::MockFn;
pub use crate::testing::StepHandle;
pub use crate::workflow::{CodecError, Durable, SignalFree, StartInfo, StepFuture, Workflow};
pub use futures::future::Either;
pub use serde::de::DeserializeOwned;
pub use serde::Serialize;
pub use std::any::Any;
pub use std::boxed::Box;
pub use std::clone::Clone;
pub use std::default::Default;
pub use std::fmt;
pub use std::future::Future;
pub use std::marker::Send;
pub use std::option::Option::{self, None, Some};
pub use std::result::Result::{self, Err, Ok};
pub use std::string::String;
pub use std::sync::Arc;
pub use std::time::Duration;
pub use std::vec::Vec;

/// Turns what a step method returns into the step's result: `Result<T, E>` keeps its error
/// (converted into [`StepError`]); the macro wraps a plain `T` in `Ok` itself.
pub trait IntoStepResult {
    /// The step's output.
    type Output;
    /// Converts.
    fn into_step_result(self) -> Result<Self::Output, StepError>;
}

impl<T, E: Into<StepError>> IntoStepResult for Result<T, E> {
    type Output = T;
    fn into_step_result(self) -> Result<T, StepError> {
        self.map_err(Into::into)
    }
}

/// The error future of a step whose input slot was empty (an engine bug, never user input).
#[cold]
pub fn missing_input<'a, O: Send + 'a>(step: &'static str) -> StepFuture<'a, O> {
    Box::pin(std::future::ready(Err(missing_input_error(step))))
}

/// The error of a step whose input slot was empty (an engine bug, never user input).
#[cold]
pub fn missing_input_error(step: &'static str) -> StepError {
    StepError::msg(format!(
        "internal error: step `{step}` started without its input"
    ))
}

/// Copies a step's kept inputs for an attempt (`copy`); a panic in a user `Clone` is the
/// attempt's failure, as it is on the straight-line path, which copies inside the chain's
/// future.
pub fn copy_caught<'a, T, O: Send + 'a>(copy: impl FnOnce() -> T) -> Result<T, StepFuture<'a, O>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(copy)).map_err(|payload| {
        let error = crate::task::panic_error(payload.as_ref());
        Box::pin(std::future::ready(Err(error))) as StepFuture<'a, O>
    })
}

/// Pins a step future.
pub fn boxed<'a, O, F>(future: F) -> StepFuture<'a, O>
where
    F: std::future::Future<Output = Result<O, StepError>> + Send + 'a,
{
    Box::pin(future)
}

/// The attempt of a mocked step: the test plan's `mock` on the step's arguments, its output
/// wrapped by `wrap`. One generic function instead of an `async` block per step keeps the
/// generated code (and its compile cost) small: the steps of one signature share it.
#[cold]
pub fn mocked<'a, In, Out, O, F>(mock: MockFn<In, Out>, args: In, wrap: F) -> StepFuture<'a, O>
where
    In: Send + 'a,
    Out: 'a,
    O: Send + 'a,
    F: FnOnce(Out) -> O + Send + 'a,
{
    Box::pin(async move { mock(args).await.map(wrap) })
}

/// Encodes a journaled value.
///
/// The journal accepts only what it can read back: a value whose encoding does not decode
/// (`f64::NAN` becomes `null`; a value nested deeper than the decoder's recursion limit) is
/// refused here, when it is committed, never discovered at the next resume.
pub fn encode<T: Serialize + DeserializeOwned>(value: &T) -> Result<Vec<u8>, CodecError> {
    let bytes = serde_json::to_vec(value).map_err(|e| CodecError(e.to_string()))?;
    match serde_json::from_slice::<T>(&bytes) {
        Ok(_) => Ok(bytes),
        Err(e) => Err(CodecError(format!(
            "the value cannot be stored: its encoding does not read back ({e})"
        ))),
    }
}

/// Decodes a journaled value.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    serde_json::from_slice(bytes).map_err(|e| CodecError(e.to_string()))
}

/// Journals one item of an `item_results` step: `{"ok": <output>}` or `{"err": "<message>"}`
/// (the error's message crosses a restart, not its type).
pub fn encode_item_result<T>(
    value: &Result<T, StepError>,
    encode: impl Fn(&T) -> Result<Vec<u8>, CodecError>,
) -> Result<Vec<u8>, CodecError> {
    match value {
        Ok(output) => {
            let mut bytes = b"{\"ok\":".to_vec();
            bytes.extend(encode(output)?);
            bytes.push(b'}');
            Ok(bytes)
        }
        Err(error) => serde_json::to_vec(&serde_json::json!({ "err": error.to_string() }))
            .map_err(|e| CodecError(e.to_string())),
    }
}

/// Reads back what [`encode_item_result`] wrote.
pub fn decode_item_result<T>(
    bytes: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, CodecError>,
) -> Result<Result<T, StepError>, CodecError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| CodecError(e.to_string()))?;
    if let Some(output) = value.get("ok") {
        let bytes = serde_json::to_vec(output).map_err(|e| CodecError(e.to_string()))?;
        return Ok(Ok(decode(&bytes)?));
    }
    match value.get("err").and_then(serde_json::Value::as_str) {
        Some(message) => Ok(Err(StepError::msg(message))),
        None => Err(CodecError(
            "an item result is neither {\"ok\": ..} nor {\"err\": ..}".into(),
        )),
    }
}

/// The message of a journal record naming a step the definition does not have.
pub fn unknown_step(step: StepIndex) -> String {
    format!("no step #{step} in this definition")
}

/// Asks for the JSON Schema of `T`: `(&SchemaProbe::<T>::new()).schema()` is `Some` when `T`
/// implements `schemars::JsonSchema` ([`HasSchema`]) and `None` otherwise ([`NoSchema`], found
/// one auto-reference later), so the macro can ask for every payload type.
pub struct SchemaProbe<T>(std::marker::PhantomData<fn() -> T>);

impl<T> SchemaProbe<T> {
    /// A probe for `T`.
    pub fn new() -> Self {
        SchemaProbe(std::marker::PhantomData)
    }
}

impl<T> Default for SchemaProbe<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// The schema of a `JsonSchema` type.
pub trait HasSchema {
    /// The schema, as JSON text.
    fn schema(&self) -> Option<String>;
}

impl<T: schemars::JsonSchema> HasSchema for SchemaProbe<T> {
    fn schema(&self) -> Option<String> {
        serde_json::to_string(&schemars::schema_for!(T)).ok()
    }
}

/// No schema: the type does not implement `JsonSchema`.
pub trait NoSchema {
    /// `None`.
    fn schema(&self) -> Option<String>;
}

impl<T> NoSchema for &SchemaProbe<T> {
    fn schema(&self) -> Option<String> {
        None
    }
}
