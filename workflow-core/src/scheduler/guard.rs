//! What stops a run from outside it: its fence (a worker that lost the run's lease), its
//! cancellation and its deadline, as one future per run, made only for a run that has any of
//! them. The run's future keeps a pointer to it rather than the waits themselves, so a run
//! without them (most runs) is not made larger by them.

use std::future::{pending, Future};
use std::pin::Pin;
use std::time::Duration;

use tokio::time::Sleep;

use super::Stop;
use crate::options::{CancellationToken, RunOptions};

/// Resolves with the stop that interrupts the run: fenced before cancelled before the
/// deadline, when several are due at once.
pub(super) type Guard<'o> = Pin<Box<dyn Future<Output = Stop> + Send + 'o>>;

/// The run's guard; `None` without fence, cancellation and deadline. The deadline counts from
/// now.
pub(super) fn guard(options: &RunOptions) -> Option<Guard<'_>> {
    if options.deadline.is_none() && options.cancel.is_none() && options.fence.is_none() {
        return None;
    }
    let deadline = options
        .deadline
        .map(|after| (tokio::time::sleep(after), after));
    Some(Box::pin(async move {
        tokio::select! {
            biased;
            () = cancelled(options.fence.as_ref()) => Stop::Fenced,
            () = cancelled(options.cancel.as_ref()) => Stop::Cancelled,
            after = expired(deadline) => Stop::Deadline(after),
        }
    }))
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
