//! What stops a run from outside it: its fence (a worker that lost the run's lease), its
//! cancellation and its deadline, as one future per run, made only for a run that has any of
//! them. The run's future keeps a pointer to it rather than the waits themselves, so a run
//! without them (most runs) is not made larger by them.
//!
//! The run asks its guard at every event, but polls the waits only once one of them woke it
//! (see [`Guard::poll`]): polling a cancellation token's wait and a timer costs more than a
//! step.

use std::future::{pending, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Sleep;

use super::wakes::Wakes;
use super::Stop;
use crate::options::{CancellationToken, RunOptions};

/// The run's fence, cancellation and deadline: resolves with the stop that interrupts the run,
/// fenced before cancelled before the deadline when several are due at once.
pub(super) struct Guard<'o> {
    waits: Pin<Box<dyn Future<Output = Stop> + Send + 'o>>,
    /// Marked by the waits' waker (and at first): the waits are polled again.
    wakes: Arc<Wakes>,
    /// The waker the waits are polled with: it marks `wakes` and passes the wake on to the run.
    waker: Waker,
}

/// The one bit of the guard's [`Wakes`]: its waits, polled together.
const WAITS: u8 = 1;

/// The run's guard; `None` without fence, cancellation and deadline. The deadline counts from
/// now.
pub(super) fn guard(options: &RunOptions) -> Option<Guard<'_>> {
    if options.deadline.is_none() && options.cancel.is_none() && options.fence.is_none() {
        return None;
    }
    let deadline = options
        .deadline
        .map(|after| (tokio::time::sleep(after), after));
    let wakes = Arc::new(Wakes::default());
    wakes.mark(WAITS);
    Some(Guard {
        waits: Box::pin(async move {
            tokio::select! {
                biased;
                () = cancelled(options.fence.as_ref()) => Stop::Fenced,
                () = cancelled(options.cancel.as_ref()) => Stop::Cancelled,
                after = expired(deadline) => Stop::Deadline(after),
            }
        }),
        waker: wakes.waker(WAITS),
        wakes,
    })
}

impl Guard<'_> {
    /// The stop, once one is due. The waits are polled only when their waker fired since the
    /// last poll (and at the first): they registered it then, and a wait that is not woken has
    /// nothing new to say.
    pub(super) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Stop> {
        self.wakes.register(cx.waker());
        if self.wakes.take() == 0 {
            return Poll::Pending;
        }
        self.waits
            .as_mut()
            .poll(&mut Context::from_waker(&self.waker))
    }
}

/// Resolves when `token` is cancelled; never without a token.
async fn cancelled(token: Option<&CancellationToken>) {
    match token {
        Some(token) => token.cancelled().await,
        None => pending().await,
    }
}

/// Resolves with the deadline when it has passed; never without a deadline.
async fn expired(deadline: Option<(Sleep, Duration)>) -> Duration {
    match deadline {
        Some((sleep, after)) => {
            sleep.await;
            after
        }
        None => pending().await,
    }
}
