//! The run's in-flight work (attempts, items, backoffs, signal waits), polled together.
//!
//! New work waits in a queue, in the order it was pushed, until the run asks for its next
//! event: then it is polled there, with the run's waker, one unit at a time, after the work
//! already pending. One that finishes is the event, and needs no node in the set (a step with
//! nothing to wait for, as many `for_each` items are, costs one allocation, its future); one
//! that is pending goes into the set, which polls it with its own waker from then on.
//!
//! So a unit's outcome is handled before anything pushed after it is even polled: a failure,
//! a cancellation or a race's winner stops the run or the losing branches before they start
//! (`tests/first_polls.rs`). Two differences from a set alone, both within what a step may
//! expect: units that become ready at about the same time may be handled in another order (a
//! unit moved into the set is queued there at once, as the set queues what it is given), so
//! which of two racers that finish together wins is not specified; and a pending unit is
//! polled a second time, with the set's waker, before it is woken. A step future must, as the
//! `Future` contract says, wake the waker of its latest poll: one that keeps the waker of its
//! first poll only is never polled again. The set is made on first use: a chain of steps, each
//! awaited in place while nothing else runs, never allocates it.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::{FuturesUnordered, StreamExt};

use crate::task::{Outcome, Tag, Task};

pub(super) struct InFlight<'a, O> {
    /// Work pending after its first poll.
    pending: Option<FuturesUnordered<Task<'a, O>>>,
    /// Work not polled yet, in the order it was pushed.
    fresh: VecDeque<Task<'a, O>>,
}

impl<'a, O> InFlight<'a, O> {
    pub fn new() -> Self {
        InFlight {
            pending: None,
            fresh: VecDeque::new(),
        }
    }

    pub fn push(&mut self, task: Task<'a, O>) {
        self.fresh.push_back(task);
    }

    pub fn is_empty(&self) -> bool {
        self.fresh.is_empty() && self.pending.as_ref().is_none_or(FuturesUnordered::is_empty)
    }

    /// The next finished unit of work; `None` when nothing is in flight.
    pub async fn next(&mut self) -> Option<(Tag, Outcome<O>)> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Polls for the next finished unit of work: the pending work first, then each new unit
    /// in turn; `Ready(None)` when nothing is in flight.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<(Tag, Outcome<O>)>> {
        if let Some(tasks) = &mut self.pending {
            if let Poll::Ready(Some(done)) = tasks.poll_next_unpin(cx) {
                return Poll::Ready(Some(done));
            }
        }
        while let Some(mut task) = self.fresh.pop_front() {
            // Polled with the run's waker: if it is pending, a wake reaches the run, whose next
            // poll of the set polls it (a pushed task is queued to be polled).
            if let Poll::Ready(done) = Pin::new(&mut task).poll(cx) {
                return Poll::Ready(Some(done));
            }
            self.pending
                .get_or_insert_with(FuturesUnordered::new)
                .push(task);
        }
        if self.is_empty() {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }

    /// Drops every unit of work in flight.
    pub fn clear(&mut self) {
        self.pending = None;
        self.fresh.clear();
    }

    /// Drops the units of work whose tag `keep` refuses.
    pub fn retain(&mut self, mut keep: impl FnMut(Tag) -> bool) {
        self.fresh.retain(|task| keep(task.tag()));
        if let Some(tasks) = self.pending.take() {
            self.pending = Some(tasks.into_iter().filter(|task| keep(task.tag())).collect());
        }
    }
}
