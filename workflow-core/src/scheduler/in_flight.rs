//! The run's in-flight work (attempts, items, backoffs, signal waits), polled together. The
//! set is made on first use: a chain of steps, each awaited in place while nothing else runs,
//! never allocates it.

use std::task::{Context, Poll};

use futures::stream::{FuturesUnordered, StreamExt};

use crate::task::{Outcome, Tag, Task};

pub(super) struct InFlight<'a, O>(Option<FuturesUnordered<Task<'a, O>>>);

impl<'a, O> InFlight<'a, O> {
    pub fn new() -> Self {
        InFlight(None)
    }

    pub fn push(&mut self, task: Task<'a, O>) {
        self.0.get_or_insert_with(FuturesUnordered::new).push(task);
    }

    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(FuturesUnordered::is_empty)
    }

    /// The next finished unit of work; `None` when nothing is in flight.
    pub async fn next(&mut self) -> Option<(Tag, Outcome<O>)> {
        match &mut self.0 {
            Some(tasks) => tasks.next().await,
            None => None,
        }
    }

    /// Polls for the next finished unit of work; `Ready(None)` when nothing is in flight.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<(Tag, Outcome<O>)>> {
        match &mut self.0 {
            Some(tasks) => tasks.poll_next_unpin(cx),
            None => Poll::Ready(None),
        }
    }

    /// Drops every unit of work in flight.
    pub fn clear(&mut self) {
        self.0 = None;
    }

    /// Drops the units of work `keep` refuses.
    pub fn retain(&mut self, keep: impl FnMut(&Task<'a, O>) -> bool) {
        if let Some(tasks) = self.0.take() {
            self.0 = Some(tasks.into_iter().filter(keep).collect());
        }
    }
}
