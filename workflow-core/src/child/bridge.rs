//! The durable side of a child step. The parent's `Durable<P>` impl knows only that the child
//! is `Durable<P>` (its `P` defers serde errors to where a durable engine runs the parent);
//! [`AsDurable`] presents such a child as the `Durable` workflow the engine runs.

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

use futures::FutureExt;

use super::{ChildFinished, DurableChild, DurableChildWorkflow, UndoFuture};
use crate::context::StepContext;
use crate::definition::{Definition, StepIndex};
use crate::durable::DurableEngine;
use crate::error::{StepError, WorkflowError};
use crate::run_id::RunId;
use crate::testing::TestPlan;
use crate::workflow::{CodecError, Durable, StartInfo, StepFuture, Workflow};

/// How a durable engine runs and undoes child workflow `C` (from `C::default()`).
#[doc(hidden)]
pub fn durable_child<C, P>() -> DurableChild
where
    C: DurableChildWorkflow<P>,
    C::Input: 'static,
    C::Output: 'static,
    P: 'static,
{
    DurableChild {
        run: run::<C, P>,
        undo: undo::<C, P>,
        signal: signal::<C, P>,
    }
}

fn run<C, P>(
    context: StepContext,
    run_id: RunId,
    input: Box<dyn Any + Send>,
    plan: Option<Arc<TestPlan>>,
) -> futures::future::BoxFuture<'static, Result<ChildFinished, WorkflowError>>
where
    C: DurableChildWorkflow<P>,
    C::Input: 'static,
    C::Output: 'static,
    P: 'static,
{
    async move {
        let Ok(input) = input.downcast::<C::Input>() else {
            let detail = format!(
                "internal error: the input of child step `{}` has another type",
                context.step()
            );
            return Err(WorkflowError::Store {
                workflow: C::definition().name,
                run_id: context.run_id().clone(),
                error: crate::store::StoreError::Corrupt {
                    run_id: context.run_id().clone(),
                    seq: None,
                    detail,
                },
            });
        };
        let Some(engine) = context.engine() else {
            let detail = "internal error: a durable child outside a durable run".to_owned();
            return Err(WorkflowError::Store {
                workflow: C::definition().name,
                run_id: context.run_id().clone(),
                error: crate::store::StoreError::Corrupt {
                    run_id: context.run_id().clone(),
                    seq: None,
                    detail,
                },
            });
        };
        let finished = context
            .run_child_as(&engine, &AsDurable::<C, P>::default(), run_id, *input, plan)
            .await;
        let output = finished.result?;
        Ok((Box::new(output) as Box<dyn Any + Send>, finished.history))
    }
    .boxed()
}

fn undo<C, P>(engine: DurableEngine, run_id: RunId) -> UndoFuture
where
    C: DurableChildWorkflow<P>,
    C::Input: 'static,
    C::Output: 'static,
    P: 'static,
{
    async move {
        engine
            .undo_completed(&AsDurable::<C, P>::default(), &run_id)
            .await
    }
    .boxed()
}

fn signal<C, P>(
    engine: DurableEngine,
    run_id: RunId,
    step: StepIndex,
    payload: Box<dyn Any + Send + Sync>,
) -> futures::future::BoxFuture<'static, Result<(), WorkflowError>>
where
    C: DurableChildWorkflow<P>,
    P: 'static,
{
    async move {
        engine
            .send_typed_signal::<AsDurable<C, P>>(&run_id, step, &*payload)
            .await
    }
    .boxed()
}

/// `C`, a `Durable<P>` workflow, as a `Durable` one: every item forwards to `C`.
pub(crate) struct AsDurable<C, P>(C, PhantomData<fn() -> P>);

impl<C: DurableChildWorkflow<P>, P> Default for AsDurable<C, P> {
    fn default() -> Self {
        AsDurable(C::__new(), PhantomData)
    }
}

impl<C: DurableChildWorkflow<P>, P> Clone for AsDurable<C, P> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl<C: Durable<P>, P> Workflow for AsDurable<C, P> {
    type Input = C::Input;
    type Output = C::Output;
    type Step = C::Step;
    type __State = C::__State;
    type __Out = C::__Out;

    fn definition() -> &'static Definition {
        C::definition()
    }
    fn __step(index: StepIndex) -> Option<Self::Step> {
        C::__step(index)
    }
    fn __new_state(input: Self::Input) -> Self::__State {
        C::__new_state(input)
    }
    fn __start<'a>(
        &'a self,
        state: &mut Self::__State,
        step: StepIndex,
        item: usize,
        info: StartInfo<'_>,
    ) -> StepFuture<'a, Self::__Out> {
        self.0.__start(state, step, item, info)
    }
    fn __run_segment<'a, A>(
        &'a self,
        state: &'a mut Self::__State,
        step: StepIndex,
        info: StartInfo<'a>,
        advance: &'a mut A,
    ) -> impl std::future::Future<Output = Result<Self::__Out, StepError>> + Send + use<'a, C, P, A>
    where
        A: FnMut(StepIndex, StepIndex) -> bool + Send,
    {
        self.0.__run_segment(state, step, info, advance)
    }
    fn __item_failed(step: StepIndex, item: usize, error: StepError) -> Option<Self::__Out> {
        C::__item_failed(step, item, error)
    }
    fn __fallback<'a>(
        &'a self,
        state: &mut Self::__State,
        step: StepIndex,
        item: usize,
        error: StepError,
    ) -> Option<StepFuture<'a, Self::__Out>> {
        self.0.__fallback(state, step, item, error)
    }
    fn __compensate<'a>(
        &'a self,
        state: &mut Self::__State,
        step: StepIndex,
        completion: usize,
        info: StartInfo<'_>,
    ) -> Option<StepFuture<'a, ()>> {
        self.0.__compensate(state, step, completion, info)
    }
    fn __deliver(state: &mut Self::__State, out: Self::__Out) -> Option<u16> {
        C::__deliver(state, out)
    }
    fn __for_each_begin(state: &mut Self::__State, step: StepIndex) -> usize {
        C::__for_each_begin(state, step)
    }
    fn __for_each_finish(state: &mut Self::__State, step: StepIndex) -> Option<u16> {
        C::__for_each_finish(state, step)
    }
    fn __reset(state: &mut Self::__State, step: StepIndex) {
        C::__reset(state, step)
    }
    fn __signal_timed_out(step: StepIndex) -> Option<Box<dyn Any + Send>> {
        C::__signal_timed_out(step)
    }
    fn __take_output(state: &mut Self::__State) -> Option<Self::Output> {
        C::__take_output(state)
    }
}

impl<C: Durable<P>, P> Durable for AsDurable<C, P> {
    fn __encode_input(input: &Self::Input) -> Result<Vec<u8>, CodecError> {
        C::__encode_input(input)
    }
    fn __decode_input(bytes: &[u8]) -> Result<Self::Input, CodecError> {
        C::__decode_input(bytes)
    }
    fn __encode_output(output: &Self::Output) -> Result<Vec<u8>, CodecError> {
        C::__encode_output(output)
    }
    fn __decode_output(bytes: &[u8]) -> Result<Self::Output, CodecError> {
        C::__decode_output(bytes)
    }
    fn __encode_out(out: &Self::__Out) -> Result<Vec<u8>, CodecError> {
        C::__encode_out(out)
    }
    fn __decode_out(step: StepIndex, item: usize, bytes: &[u8]) -> Result<Self::__Out, CodecError> {
        C::__decode_out(step, item, bytes)
    }
    fn __encode_signal(
        step: StepIndex,
        payload: &(dyn Any + Send + Sync),
    ) -> Result<Vec<u8>, CodecError> {
        C::__encode_signal(step, payload)
    }
    fn __decode_signal(step: StepIndex, bytes: &[u8]) -> Result<Box<dyn Any + Send>, CodecError> {
        C::__decode_signal(step, bytes)
    }
    fn __child(step: StepIndex) -> Option<DurableChild> {
        C::__child(step)
    }
    fn __signal_schemas() -> Vec<(&'static str, Option<String>)> {
        C::__signal_schemas()
    }
}
