//! An in-memory child run that outlives its output: after it completes it is held, so that
//! its parent's saga can still undo it as a unit (its compensations, latest first), until the
//! parent lets it go.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::{Driven, Driver, Recorder};
use crate::child::{ChildUndo, Undone};
use crate::context::RunInfo;
use crate::error::WorkflowError;
use crate::history::RunHistory;
use crate::memory::{Mailbox, MemoryJournal};
use crate::options::RunOptions;
use crate::workflow::Workflow;

/// What a held child run hands its parent step when it ends.
pub(crate) struct Held<O> {
    pub result: Result<O, WorkflowError>,
    pub history: RunHistory,
    /// For a completed child with saga steps: how to undo it.
    pub undo: Option<ChildUndo>,
}

/// Runs `workflow` on `input` to its end (taking signals from `mailbox`) and sends the result
/// to `done`. A child that
/// stops early compensates first; a completed one with saga steps then waits until its parent
/// asks for its undo (or drops it).
pub(crate) async fn drive_held<W>(
    workflow: W,
    input: W::Input,
    run: Arc<RunInfo>,
    options: RunOptions,
    mailbox: Arc<Mailbox>,
    done: oneshot::Sender<Held<W::Output>>,
) where
    W: Workflow + Sync,
{
    let mut recorder = Recorder::new(W::definition());
    let mut signals = MemoryJournal { mailbox };
    let journal: &mut (dyn crate::journal::Journal<W::__Out> + '_) = &mut signals;
    let mut driver = Driver::new(
        &workflow,
        input,
        run,
        &options,
        Some(journal),
        Some(&mut recorder),
    );
    // Without a store nothing parks or holds a lease: the drive finishes.
    let Driven::Finished(result) = driver.drive(Vec::new(), &options).await else {
        return;
    };
    let held = result.is_ok() && !driver.sagas.is_empty();
    let history = driver
        .recorder
        .as_deref()
        .map(Recorder::history)
        .unwrap_or_default();
    let (undo, asked) = oneshot::channel::<oneshot::Sender<Undone>>();
    let sent = done.send(Held {
        result,
        history,
        undo: held.then(|| ChildUndo::held(W::definition(), undo)),
    });
    if sent.is_err() || !held {
        return;
    }
    // Until the parent ends: it asks for the undo, or drops it (nothing to undo).
    if let Ok(reply) = asked.await {
        let undone = driver
            .compensate()
            .await
            .map_err(|error| driver.store_error(error));
        let _ = reply.send(undone);
    }
}
