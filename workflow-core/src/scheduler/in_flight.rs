//! The run's in-flight work (attempts, items, backoffs, signal waits), polled together.
//!
//! An attempt is polled once as it is pushed, with a waker that does nothing: one that
//! finishes then (a step with no await that waits, as many `for_each` items are) is queued as
//! finished without a node in the set. One that is pending goes into the set, which polls it
//! again, with its own waker, before anything could wake it. The set is made on first use: a
//! chain of steps, each awaited in place while nothing else runs, never allocates it.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures::stream::{FuturesUnordered, StreamExt};

use crate::task::{Outcome, Tag, Task};

pub(super) struct InFlight<'a, O> {
    /// Work still pending after its first poll.
    pending: Option<FuturesUnordered<Task<'a, O>>>,
    /// Attempts that finished on their first poll, in the order they were pushed.
    finished: VecDeque<(Tag, Outcome<O>)>,
}

impl<'a, O> InFlight<'a, O> {
    pub fn new() -> Self {
        InFlight {
            pending: None,
            finished: VecDeque::new(),
        }
    }

    pub fn push(&mut self, mut task: Task<'a, O>) {
        if task.is_attempt() {
            let mut cx = Context::from_waker(Waker::noop());
            if let Poll::Ready(done) = Pin::new(&mut task).poll(&mut cx) {
                self.finished.push_back(done);
                return;
            }
        }
        self.pending
            .get_or_insert_with(FuturesUnordered::new)
            .push(task);
    }

    pub fn is_empty(&self) -> bool {
        self.finished.is_empty() && self.pending.as_ref().is_none_or(FuturesUnordered::is_empty)
    }

    /// The next finished unit of work; `None` when nothing is in flight.
    pub async fn next(&mut self) -> Option<(Tag, Outcome<O>)> {
        if let Some(done) = self.finished.pop_front() {
            return Some(done);
        }
        match &mut self.pending {
            Some(tasks) => tasks.next().await,
            None => None,
        }
    }

    /// Polls for the next finished unit of work; `Ready(None)` when nothing is in flight.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<(Tag, Outcome<O>)>> {
        if let Some(done) = self.finished.pop_front() {
            return Poll::Ready(Some(done));
        }
        match &mut self.pending {
            Some(tasks) => tasks.poll_next_unpin(cx),
            None => Poll::Ready(None),
        }
    }

    /// Drops every unit of work in flight, finished or not.
    pub fn clear(&mut self) {
        self.pending = None;
        self.finished.clear();
    }

    /// Drops the units of work, finished or not, whose tag `keep` refuses.
    pub fn retain(&mut self, mut keep: impl FnMut(Tag) -> bool) {
        self.finished.retain(|(tag, _)| keep(*tag));
        if let Some(tasks) = self.pending.take() {
            self.pending = Some(tasks.into_iter().filter(|task| keep(task.tag())).collect());
        }
    }
}
