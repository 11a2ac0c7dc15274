//! Step outputs whose journal records are being committed. The run goes on while they are in
//! flight (its other steps run, and its parallel branches share the store's group commits);
//! each output goes downstream once its record is committed, in journal order, so a resumed
//! run replays exactly what ran live.

use std::collections::VecDeque;
use std::task::{Context, Poll};

use crate::journal::Commit;
use crate::store::StoreError;
use crate::task::Tag;

/// An output waiting for its commit (`None` once committed).
struct Committing<O> {
    tag: Tag,
    out: O,
    commit: Option<Commit>,
}

/// Most outputs one run has in flight to the journal: past it the run waits for the oldest
/// before it takes another result, so one run (a `for_each` of 100,000 items, say) cannot queue
/// so much that the store's other writes (heartbeats, claims, other runs) wait seconds behind
/// it. Large enough for its records to fill group commits.
pub(super) const MAX_IN_FLIGHT: usize = 256;

/// The run's outputs in flight to the journal, oldest first.
pub(super) struct Commits<O>(VecDeque<Committing<O>>);

impl<O> Commits<O> {
    pub fn new() -> Self {
        Commits(VecDeque::new())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when the run must wait for a commit before it takes another result.
    pub fn full(&self) -> bool {
        self.0.len() >= MAX_IN_FLIGHT
    }

    /// Waits until every queued output is committed, in order, keeping them to be handed on
    /// as usual: a record written after this follows them in the journal whatever the store
    /// (even one that sends an append only when its future is first polled).
    pub async fn settle(&mut self) -> Result<(), StoreError> {
        for pending in &mut self.0 {
            if let Some(commit) = pending.commit.take() {
                if let Err(error) = commit.await {
                    self.0.clear();
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    pub fn push(&mut self, tag: Tag, out: O, commit: Commit) {
        self.0.push_back(Committing {
            tag,
            out,
            commit: Some(commit),
        });
    }

    /// The oldest output once it is committed (the store commits queued records in order, so
    /// only the oldest is polled), or its commit's error; `None` when nothing is in flight.
    pub fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(Tag, Result<O, StoreError>)>> {
        let Some(front) = self.0.front_mut() else {
            return Poll::Ready(None);
        };
        if let Some(commit) = &mut front.commit {
            match commit.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(error)) => {
                    let tag = front.tag;
                    self.0.clear();
                    return Poll::Ready(Some((tag, Err(error))));
                }
                Poll::Ready(Ok(())) => front.commit = None,
            }
        }
        let done = self.0.pop_front().expect("the front was just seen");
        Poll::Ready(Some((done.tag, Ok(done.out))))
    }

    /// The next committed output, in journal order; `None` when nothing is in flight.
    pub async fn next(&mut self) -> Option<(Tag, Result<O, StoreError>)> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }
}
