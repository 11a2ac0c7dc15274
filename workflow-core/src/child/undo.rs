//! [`ChildUndo`]: how a completed child workflow is undone as a unit, when its parent's saga
//! compensates: its own compensations run, latest first.

use futures::future::BoxFuture;
use tokio::sync::oneshot;

use super::Undone;
use crate::definition::Definition;

/// How one completed child is undone.
pub(crate) struct ChildUndo {
    /// The child's workflow.
    pub definition: &'static Definition,
    how: How,
}

enum How {
    /// An in-memory child, held by its task until its parent ends.
    Held(oneshot::Sender<oneshot::Sender<Undone>>),
    /// A durable child run, undone from its journal.
    Stored(Box<dyn FnOnce() -> BoxFuture<'static, Undone> + Send>),
}

impl ChildUndo {
    /// The undo of an in-memory child whose task holds it: `held` asks it.
    pub(crate) fn held(
        definition: &'static Definition,
        held: oneshot::Sender<oneshot::Sender<Undone>>,
    ) -> Self {
        ChildUndo {
            definition,
            how: How::Held(held),
        }
    }

    /// The undo of a durable child run: `undo` replays its journal and compensates.
    pub(crate) fn stored(
        definition: &'static Definition,
        undo: impl FnOnce() -> BoxFuture<'static, Undone> + Send + 'static,
    ) -> Self {
        ChildUndo {
            definition,
            how: How::Stored(Box::new(undo)),
        }
    }

    /// Runs the child's compensations, latest first.
    pub(crate) async fn undo(self) -> Undone {
        match self.how {
            How::Held(held) => {
                let (reply, answer) = oneshot::channel();
                // A child whose task is gone has nothing left to undo.
                if held.send(reply).is_err() {
                    return Ok(Vec::new());
                }
                answer.await.unwrap_or_else(|_| Ok(Vec::new()))
            }
            How::Stored(undo) => undo().await,
        }
    }
}
