//! Hooks for `workflow-testkit`: typed step handles, mocks and injected faults.
//!
//! A [`TestPlan`] travels with a run (`RunOptions::test_plan`); the scheduler and the
//! generated dispatcher consult it. Workflows use none of this in production: without a plan,
//! each hook is one `Option` check. Making a plan (mocks, faults, crash points) needs the
//! `testkit` feature, which `workflow-testkit` turns on: production code depending on
//! `workflow-core` alone cannot inject faults by mistake.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::definition::StepIndex;
use crate::error::StepError;

/// A typed handle on one step of workflow `W`: `In` is the tuple of its inputs, `Out` its
/// output (for a `for_each` step: one item and its result). Get one from the generated
/// `W::steps()`; a misspelled step is a compile error, and so is a mock of the wrong type.
pub struct StepHandle<W, In, Out> {
    index: StepIndex,
    name: &'static str,
    types: PhantomData<fn(In) -> (W, Out)>,
}

impl<W, In, Out> StepHandle<W, In, Out> {
    #[doc(hidden)]
    pub const fn new(index: StepIndex, name: &'static str) -> Self {
        StepHandle {
            index,
            name,
            types: PhantomData,
        }
    }

    /// The step's index in the definition.
    pub fn index(&self) -> StepIndex {
        self.index
    }

    /// The step's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl<W, In, Out> Clone for StepHandle<W, In, Out> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<W, In, Out> Copy for StepHandle<W, In, Out> {}

/// A mock body of a step with inputs `In` and output `Out`.
pub type MockFn<In, Out> =
    Arc<dyn Fn(In) -> BoxFuture<'static, Result<Out, StepError>> + Send + Sync>;

/// What a test makes a step do instead of (or before) its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The first `n` attempts fail with a retryable error; later ones run the body.
    FailTimes(u32),
    /// Every attempt fails with a permanent error.
    FailPermanently,
    /// Every attempt panics.
    Panic,
    /// Every attempt hangs until its timeout (or forever).
    Hang,
}

/// Mocks, faults and a crash point for one run.
#[derive(Default)]
pub struct TestPlan {
    mocks: HashMap<StepIndex, Box<dyn Any + Send + Sync>>,
    faults: HashMap<StepIndex, Fault>,
    failing_compensations: HashSet<StepIndex>,
    crash_after: Option<StepIndex>,
    /// The plans of the child workflows run by `workflow = Child` steps.
    children: HashMap<StepIndex, Arc<TestPlan>>,
}

impl std::fmt::Debug for TestPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPlan")
            .field("mocked_steps", &self.mocks.keys().collect::<Vec<_>>())
            .field("faults", &self.faults)
            .field("failing_compensations", &self.failing_compensations)
            .field("crash_after", &self.crash_after)
            .finish()
    }
}

impl TestPlan {
    /// Replaces the body of `step` with `mock`.
    #[cfg(feature = "testkit")]
    pub fn mock<W, In, Out>(&mut self, step: StepHandle<W, In, Out>, mock: MockFn<In, Out>)
    where
        In: 'static,
        Out: 'static,
    {
        self.mocks.insert(step.index, Box::new(mock));
    }

    /// Makes `step` misbehave.
    #[cfg(feature = "testkit")]
    pub fn fault<W, In, Out>(&mut self, step: StepHandle<W, In, Out>, fault: Fault) {
        self.faults.insert(step.index, fault);
    }

    /// Makes the compensation of saga step `step` fail on every attempt.
    #[cfg(feature = "testkit")]
    pub fn fail_compensation<W, In, Out>(&mut self, step: StepHandle<W, In, Out>) {
        self.failing_compensations.insert(step.index);
    }

    /// Stops the run abruptly right after `step`'s output is committed, as a crash would:
    /// no compensation, nothing more journaled.
    #[cfg(feature = "testkit")]
    pub fn crash_after<W, In, Out>(&mut self, step: StepHandle<W, In, Out>) {
        self.crash_after = Some(step.index);
    }

    /// The plan of the child workflow that step `step` runs (`workflow = Child`): mocks and
    /// faults of the child's own steps.
    #[cfg(feature = "testkit")]
    pub fn child<W, In, Out>(&mut self, step: StepHandle<W, In, Out>) -> &mut TestPlan {
        let plan = self.children.entry(step.index).or_default();
        Arc::get_mut(plan).expect("a test plan is complete before its run starts")
    }

    /// The plan of the child of step `step`, if the test made one.
    pub(crate) fn child_plan(&self, step: StepIndex) -> Option<Arc<TestPlan>> {
        self.children.get(&step).cloned()
    }

    /// The mock of `step`, if its types are `In` and `Out`.
    #[doc(hidden)]
    #[cold]
    pub fn mock_for<In: 'static, Out: 'static>(&self, step: StepIndex) -> Option<MockFn<In, Out>> {
        self.mocks
            .get(&step)
            .and_then(|mock| mock.downcast_ref::<MockFn<In, Out>>())
            .cloned()
    }

    pub(crate) fn fault_for(&self, step: StepIndex, attempt: u32) -> Option<Fault> {
        match self.faults.get(&step)? {
            Fault::FailTimes(n) if attempt > *n => None,
            fault => Some(*fault),
        }
    }

    pub(crate) fn compensation_fails(&self, step: StepIndex) -> bool {
        self.failing_compensations.contains(&step)
    }

    pub(crate) fn crashes_after(&self, step: StepIndex) -> bool {
        self.crash_after == Some(step)
    }
}

/// The future of an attempt replaced by `fault`.
pub(crate) fn fault_future<'a, O: Send + 'a>(
    step: &'static str,
    attempt: u32,
    fault: Fault,
) -> crate::workflow::StepFuture<'a, O> {
    Box::pin(async move {
        match fault {
            Fault::FailTimes(_) => Err(StepError::msg(format!(
                "injected failure of `{step}` (attempt {attempt})"
            ))),
            Fault::FailPermanently => Err(StepError::permanent(StepError::msg(format!(
                "injected permanent failure of `{step}`"
            )))),
            Fault::Panic => panic!("injected panic in `{step}`"),
            Fault::Hang => std::future::pending().await,
        }
    })
}
