//! The run's in-flight work (attempts, items, backoffs, signal waits), polled together.
//!
//! New work waits in a queue, in the order it was pushed, until the run asks for its next
//! event: then it is polled there, after the work already pending, one unit at a time. One that
//! finishes is the event and never needs a node in the set (a step with nothing to wait for,
//! as many `for_each` items are, costs one allocation: its future). A few that wait are held
//! and polled again, with the run's waker as on their first poll, whenever the run is woken;
//! past those few, new work goes into the set unpolled, and the set polls it with its own waker
//! from the first poll on. So every unit keeps the waker of its first poll for good (a future
//! that registers its waker once still wakes the run), and a unit's outcome is handled before
//! anything pushed after it is polled: a failure, a cancellation or a race's winner stops the
//! run or the losing branches before they start (`tests/first_polls.rs`). Units ready at about
//! the same time may be handled in another order than a set alone would: which of two racers
//! that finish together wins is not specified. The set is made on first use: a chain of
//! steps, each awaited in place while nothing else runs, never allocates it.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::{FuturesUnordered, StreamExt};

use crate::task::{Outcome, Tag, Task};

/// How many waiting units are held outside the set (each is polled at every wake of the run).
const HELD: usize = 8;

pub(super) struct InFlight<'a, O> {
    /// Work polled by the set, with a waker of its own.
    pending: Option<FuturesUnordered<Task<'a, O>>>,
    /// Work that waited at its first poll, polled with the run's waker, in push order.
    held: Vec<Task<'a, O>>,
    /// Work not polled yet, in the order it was pushed.
    fresh: VecDeque<Task<'a, O>>,
}

impl<'a, O> InFlight<'a, O> {
    pub fn new() -> Self {
        InFlight {
            pending: None,
            held: Vec::new(),
            fresh: VecDeque::new(),
        }
    }

    pub fn push(&mut self, task: Task<'a, O>) {
        self.fresh.push_back(task);
    }

    pub fn is_empty(&self) -> bool {
        self.fresh.is_empty()
            && self.held.is_empty()
            && self.pending.as_ref().is_none_or(FuturesUnordered::is_empty)
    }

    /// The next finished unit of work; `None` when nothing is in flight.
    pub async fn next(&mut self) -> Option<(Tag, Outcome<O>)> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Polls for the next finished unit of work: the set's, then the held units, then each
    /// new unit in turn; `Ready(None)` when nothing is in flight.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<(Tag, Outcome<O>)>> {
        if let Some(done) = self.poll_set(cx) {
            return Poll::Ready(Some(done));
        }
        for at in 0..self.held.len() {
            if let Poll::Ready(done) = Pin::new(&mut self.held[at]).poll(cx) {
                self.held.remove(at);
                return Poll::Ready(Some(done));
            }
        }
        let mut to_set = false;
        while let Some(mut task) = self.fresh.pop_front() {
            if self.held.len() == HELD {
                self.pending
                    .get_or_insert_with(FuturesUnordered::new)
                    .push(task);
                to_set = true;
                continue;
            }
            if let Poll::Ready(done) = Pin::new(&mut task).poll(cx) {
                return Poll::Ready(Some(done));
            }
            self.held.push(task);
        }
        // What went into the set unpolled is polled now, with the set's wakers.
        if to_set {
            if let Some(done) = self.poll_set(cx) {
                return Poll::Ready(Some(done));
            }
        }
        if self.is_empty() {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }

    /// The next unit the set finished, if any.
    fn poll_set(&mut self, cx: &mut Context<'_>) -> Option<(Tag, Outcome<O>)> {
        match self.pending.as_mut()?.poll_next_unpin(cx) {
            Poll::Ready(done) => done,
            Poll::Pending => None,
        }
    }

    /// Drops every unit of work in flight.
    pub fn clear(&mut self) {
        self.pending = None;
        self.held.clear();
        self.fresh.clear();
    }

    /// Drops the units of work whose tag `keep` refuses.
    pub fn retain(&mut self, mut keep: impl FnMut(Tag) -> bool) {
        self.fresh.retain(|task| keep(task.tag()));
        self.held.retain(|task| keep(task.tag()));
        if let Some(tasks) = self.pending.take() {
            self.pending = Some(tasks.into_iter().filter(|task| keep(task.tag())).collect());
        }
    }
}
