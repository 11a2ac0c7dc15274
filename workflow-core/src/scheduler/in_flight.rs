//! The run's in-flight work (attempts, items, backoffs, signal waits), polled together.
//!
//! New work waits in a queue, in the order it was pushed, until the run asks for its next
//! event: then it is polled there, after the work already pending, one unit at a time. One that
//! finishes is the event and never needs a node in the set (a step with nothing to wait for,
//! as many `for_each` items are, costs one allocation: its future). A few that wait are held
//! in slots, each with a waker of its own (made once per run), and polled again only when that
//! waker was woken. Past those few, new work goes into the set unpolled, and so does all new
//! work after it until the set runs dry; the set polls each unit with a waker of its own from
//! the first poll on. What this keeps:
//! - Every unit keeps the waker of its first poll for good, so a future that registers its
//!   waker once still wakes the run; units a race cancels are dropped where they are, never by
//!   moving the others into a new set.
//! - A unit's outcome is handled before anything pushed after it is polled: a failure, a
//!   cancellation or a race's winner stops the run or the losing branches before they start.
//! - In a workflow with races nothing is held: all new work goes to the set, which hands back
//!   units in the order they were woken, so of two racers the one woken first wins.
//! - A waiting unit is polled again only once woken (no poll at every event of the run).
//!
//! Held units woken together are handled in slot order, after the set's (no race depends on
//! it). The set and the slots are made on first use: a chain of steps, each awaited in place
//! while nothing else runs, makes neither. `tests/first_polls.rs` checks each point.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures::stream::{FuturesUnordered, StreamExt};

use super::wakes::Wakes;
use crate::task::{Outcome, Tag, Task};

/// How many waiting units are held outside the set (at most 8: one bit each in [`Wakes`]).
const HELD: usize = 4;

pub(super) struct InFlight<'a, O> {
    /// Work polled by the set, with a waker of its own; a cancelled unit stays as `None`.
    pending: Option<FuturesUnordered<Slot<'a, O>>>,
    /// How many of `pending`'s slots are cancelled (empty).
    cancelled: usize,
    /// Work went into the set unpolled and the set is not dry yet: new work follows it there.
    set_first: bool,
    /// Whether units that wait at their first poll may be held (no races in the workflow).
    hold: bool,
    /// Work that waited at its first poll, in slots with wakers of their own.
    held: Option<Box<Held<'a, O>>>,
    /// Work not polled yet, in the order it was pushed.
    fresh: VecDeque<Task<'a, O>>,
}

/// A unit of work in the set; `None` once a race cancelled it (its future is dropped, its node
/// stays until the set is dropped, so the other units keep theirs).
struct Slot<'a, O>(Option<Task<'a, O>>);

impl<O> Future for Slot<'_, O> {
    type Output = (Tag, Outcome<O>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            Some(task) => Pin::new(task).poll(cx),
            // Never woken again: nothing holds its waker any more.
            None => Poll::Pending,
        }
    }
}

impl<'a, O> InFlight<'a, O> {
    /// Nothing in flight; `hold`: units that wait at their first poll may be held (see the
    /// module's doc: not in a workflow with races).
    pub fn new(hold: bool) -> Self {
        InFlight {
            pending: None,
            cancelled: 0,
            set_first: false,
            hold,
            held: None,
            fresh: VecDeque::new(),
        }
    }

    pub fn push(&mut self, task: Task<'a, O>) {
        self.fresh.push_back(task);
    }

    pub fn is_empty(&self) -> bool {
        self.fresh.is_empty()
            && self.held.as_ref().is_none_or(|h| h.count == 0)
            && self.set_is_dry()
    }

    /// The set holds no live unit.
    fn set_is_dry(&self) -> bool {
        self.pending
            .as_ref()
            .is_none_or(|set| set.len() == self.cancelled)
    }

    /// The next finished unit of work; `None` when nothing is in flight.
    pub async fn next(&mut self) -> Option<(Tag, Outcome<O>)> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Polls for the next finished unit of work: the set's, then the woken held units, then
    /// each new unit in turn; `Ready(None)` when nothing is in flight.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<(Tag, Outcome<O>)>> {
        if let Some(done) = self.poll_set(cx) {
            return Poll::Ready(Some(done));
        }
        if let Some(done) = self
            .held
            .as_deref_mut()
            .and_then(|held| held.poll_woken(cx))
        {
            return Poll::Ready(Some(done));
        }
        let mut to_set = false;
        while let Some(task) = self.fresh.pop_front() {
            let slot = match &self.held {
                _ if !self.hold || self.set_first => None,
                None => Some(0),
                Some(held) if held.count == 0 => Some(0),
                Some(held) => held.free_slot(),
            };
            let Some(slot) = slot else {
                self.pending
                    .get_or_insert_with(FuturesUnordered::new)
                    .push(Slot(Some(task)));
                self.set_first = true;
                to_set = true;
                continue;
            };
            let held = self.held.get_or_insert_with(Box::default);
            if let Some(done) = held.first_poll(slot, task, cx) {
                return Poll::Ready(Some(done));
            }
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

    /// The next unit the set finished, if any. A set left with cancelled units only is dropped
    /// (no live unit holds a waker of it).
    fn poll_set(&mut self, cx: &mut Context<'_>) -> Option<(Tag, Outcome<O>)> {
        let set = self.pending.as_mut()?;
        let polled = match set.poll_next_unpin(cx) {
            Poll::Ready(done) => done,
            Poll::Pending => None,
        };
        if self.set_is_dry() {
            self.set_first = false;
            if self.cancelled > 0 {
                self.pending = None;
                self.cancelled = 0;
            }
        }
        polled
    }

    /// Drops every unit of work in flight.
    pub fn clear(&mut self) {
        self.pending = None;
        self.cancelled = 0;
        self.set_first = false;
        self.held = None;
        self.fresh.clear();
    }

    /// Drops the units of work whose tag `keep` refuses; the others stay where they are.
    pub fn retain(&mut self, mut keep: impl FnMut(Tag) -> bool) {
        self.fresh.retain(|task| keep(task.tag()));
        if let Some(held) = self.held.as_deref_mut() {
            held.retain(&mut keep);
        }
        for slot in self.pending.iter_mut().flat_map(FuturesUnordered::iter_mut) {
            if slot.0.as_ref().is_some_and(|task| !keep(task.tag())) {
                slot.0 = None;
                self.cancelled += 1;
            }
        }
    }
}

/// The held units: up to [`HELD`] slots, each polled with its own waker, which marks the slot
/// woken and wakes the run.
struct Held<'a, O> {
    slots: [Option<Task<'a, O>>; HELD],
    /// How many slots hold a unit.
    count: usize,
    /// Each slot's waker, made when the slot is first used.
    wakers: [Option<Waker>; HELD],
    wakes: Arc<Wakes>,
}

impl<O> Default for Held<'_, O> {
    fn default() -> Self {
        Held {
            slots: Default::default(),
            count: 0,
            wakers: Default::default(),
            wakes: Arc::default(),
        }
    }
}

impl<'a, O> Held<'a, O> {
    fn free_slot(&self) -> Option<usize> {
        self.slots.iter().position(Option::is_none)
    }

    /// Slot `slot`'s waker, made on first use.
    fn waker(&mut self, slot: usize) -> &Waker {
        let wakes = &self.wakes;
        self.wakers[slot].get_or_insert_with(|| wakes.waker(1 << slot))
    }

    /// Polls a new unit with free slot `slot`'s waker: its outcome, or `None` once it waits in
    /// the slot.
    fn first_poll(
        &mut self,
        slot: usize,
        mut task: Task<'a, O>,
        cx: &mut Context<'_>,
    ) -> Option<(Tag, Outcome<O>)> {
        let waker = self.waker(slot);
        if let Poll::Ready(done) = Pin::new(&mut task).poll(&mut Context::from_waker(waker)) {
            return Some(done);
        }
        self.wakes.register(cx.waker());
        // Woken during its first poll, before the run's waker was registered: poll again.
        if self.wakes.is_marked(1 << slot) {
            cx.waker().wake_by_ref();
        }
        self.slots[slot] = Some(task);
        self.count += 1;
        None
    }

    /// Polls the units whose slots were woken, in slot order: the first outcome, if any (the
    /// other woken slots stay marked for the next call).
    fn poll_woken(&mut self, cx: &mut Context<'_>) -> Option<(Tag, Outcome<O>)> {
        if self.count == 0 {
            return None;
        }
        self.wakes.register(cx.waker());
        let woken = self.wakes.take();
        for slot in 0..HELD {
            let bit = 1u8 << slot;
            if woken & bit == 0 {
                continue;
            }
            let (Some(task), Some(waker)) = (self.slots[slot].as_mut(), &self.wakers[slot]) else {
                continue; // a wake that came after its unit finished
            };
            if let Poll::Ready(done) = Pin::new(task).poll(&mut Context::from_waker(waker)) {
                self.slots[slot] = None;
                self.count -= 1;
                let later = woken & !(bit | (bit - 1));
                self.wakes.mark(later);
                return Some(done);
            }
        }
        None
    }

    /// Drops the held units whose tag `keep` refuses.
    fn retain(&mut self, keep: &mut impl FnMut(Tag) -> bool) {
        for slot in &mut self.slots {
            if slot.as_ref().is_some_and(|task| !keep(task.tag())) {
                *slot = None;
                self.count -= 1;
            }
        }
    }
}
