//! One unit of in-flight work of a run: a step attempt, the pause before a retry, or a
//! signal wait.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Sleep;

use crate::definition::StepIndex;
use crate::error::StepError;
use crate::store::StoreError;
use crate::workflow::StepFuture;

/// Which invocation a [`Task`] belongs to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tag {
    pub step: StepIndex,
    pub item: usize,
    /// The step's generation when the task started; a loop iteration bumps it, so results of
    /// an abandoned iteration are recognised and dropped.
    pub generation: u32,
    pub attempt: u32,
}

/// What a finished [`Task`] reports.
pub(crate) enum Outcome<O> {
    /// The attempt ended: its output or its error (a panic and a timeout are errors too).
    Attempted(Result<O, StepError>),
    /// The backoff pause is over: start the next attempt.
    RetryDue,
    /// A signal wait ended: `true` when the signal is stored, `false` at its deadline.
    SignalReady(Result<bool, StoreError>),
    /// An output's journal record is committed (or its commit failed).
    Committed(Result<O, StoreError>),
}

/// A step attempt (with its optional timeout), a backoff pause or a signal wait.
///
/// Every field is `Unpin`, so the future is polled without pin projection.
pub(crate) struct Task<'a, O> {
    tag: Tag,
    /// Boxed, and only when tracing is on: a chain step moves its task several times.
    span: Option<Box<tracing::Span>>,
    kind: TaskKind<'a, O>,
}

enum TaskKind<'a, O> {
    /// A step with a timeout has it inside its future (see [`Task::attempt`]).
    Attempt(StepFuture<'a, O>),
    Backoff(Pin<Box<Sleep>>),
    Wait(BoxFuture<'static, Result<bool, StoreError>>),
}

impl<'a, O> Task<'a, O> {
    /// An attempt of a step; with `timeout`, the attempt fails with a timeout error once it
    /// passes (counted from now). The timeout wraps the step's future, so the tasks of the many
    /// steps without one stay small: a task and its queue node fit a small allocation.
    pub fn attempt(
        tag: Tag,
        span: Option<tracing::Span>,
        future: StepFuture<'a, O>,
        timeout: Option<Duration>,
    ) -> Self
    where
        O: Send + 'a,
    {
        let future = match timeout {
            None => future,
            Some(after) => {
                let timed = tokio::time::timeout(after, future);
                Box::pin(async move {
                    match timed.await {
                        Ok(result) => result,
                        Err(_) => Err(StepError::timed_out(after)),
                    }
                })
            }
        };
        Task {
            tag,
            span: span.map(Box::new),
            kind: TaskKind::Attempt(future),
        }
    }

    pub fn backoff(tag: Tag, pause: Duration) -> Self {
        Task {
            tag,
            span: None,
            kind: TaskKind::Backoff(Box::pin(tokio::time::sleep(pause))),
        }
    }
}

impl<O> Task<'_, O> {
    /// Which invocation this is.
    pub fn tag(&self) -> Tag {
        self.tag
    }

    pub fn wait(tag: Tag, wait: BoxFuture<'static, Result<bool, StoreError>>) -> Self {
        Task {
            tag,
            span: None,
            kind: TaskKind::Wait(wait),
        }
    }
}

impl<O> Future for Task<'_, O> {
    type Output = (Tag, Outcome<O>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let tag = this.tag;
        let _entered = this.span.as_deref().map(tracing::Span::enter);
        match &mut this.kind {
            TaskKind::Backoff(sleep) => sleep.as_mut().poll(cx).map(|()| (tag, Outcome::RetryDue)),
            TaskKind::Wait(wait) => wait
                .as_mut()
                .poll(cx)
                .map(|ready| (tag, Outcome::SignalReady(ready))),
            TaskKind::Attempt(future) => {
                poll_attempt(future.as_mut(), cx).map(|result| (tag, Outcome::Attempted(result)))
            }
        }
    }
}

/// Polls a step attempt's future; a panic in the step is the attempt's error.
pub(crate) fn poll_attempt<O, F>(
    future: Pin<&mut F>,
    cx: &mut Context<'_>,
) -> Poll<Result<O, StepError>>
where
    F: Future<Output = Result<O, StepError>> + ?Sized,
{
    match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
        Ok(polled) => polled,
        Err(payload) => Poll::Ready(Err(panic_error(payload.as_ref()))),
    }
}

/// The error of an attempt that panicked, from the panic's payload.
pub(crate) fn panic_error(payload: &(dyn std::any::Any + Send)) -> StepError {
    StepError::panicked(panic_message(payload))
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
