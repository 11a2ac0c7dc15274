//! Following a stored run: its events from the start, then new ones as its journal (and its
//! child runs' journals) grow, until it finishes. A child's events come as
//! [`RunEvent::Child`] before the parent's own new events of the same read, so a child's
//! steps show before the parent step that ran it completes.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use futures::stream::BoxStream;

use super::events::stored_events;
use super::DurableEngine;
use crate::definition::StepIndex;
use crate::error::WorkflowError;
use crate::events::RunEvent;
use crate::run_id::RunId;
use crate::store::StoreError;
use crate::workflow::Durable;

/// How often a follower re-reads a run that is not finished.
const FOLLOW_POLL: Duration = Duration::from_millis(50);

/// Where a follower is.
struct Follower {
    engine: DurableEngine,
    run_id: RunId,
    /// Events read and not handed out yet.
    queue: VecDeque<RunEvent<StepIndex>>,
    /// Per run (the parent and each child): how many of its events were queued.
    queued: HashMap<RunId, usize>,
    /// The run finished: what is queued is the rest.
    done: bool,
}

impl DurableEngine {
    /// Follows the run: its events from the start, then new ones as the journal grows, until
    /// it finishes. A store error ends the stream.
    pub(crate) fn follow<W: Durable + 'static>(
        &self,
        run_id: RunId,
    ) -> BoxStream<'static, RunEvent<W::Step>> {
        let follower = Follower {
            engine: self.clone(),
            run_id,
            queue: VecDeque::new(),
            queued: HashMap::new(),
            done: false,
        };
        Box::pin(futures::stream::unfold(
            follower,
            |mut follower| async move {
                loop {
                    if let Some(event) = follower.queue.pop_front() {
                        if let Some(typed) = event.typed::<W>() {
                            return Some((typed, follower));
                        }
                        continue;
                    }
                    if follower.done {
                        return None;
                    }
                    if !follower.queued.is_empty() {
                        tokio::time::sleep(FOLLOW_POLL).await;
                    }
                    match follower.read::<W>().await {
                        Ok(()) => {}
                        Err(WorkflowError::Store {
                            error: StoreError::UnknownRun(_),
                            ..
                        }) if follower.queued.is_empty() => tokio::time::sleep(FOLLOW_POLL).await,
                        Err(_) => return None,
                    }
                }
            },
        ))
    }
}

impl Follower {
    /// Reads the run and its children again and queues what is new.
    async fn read<W: Durable>(&mut self) -> Result<(), WorkflowError> {
        let (record, journal) = self.engine.read_run::<W>(&self.run_id).await?;
        let def = W::definition();
        let parent = self.run_id.clone();
        let store_error = super::store_error::<W>(&parent);
        let children = self
            .engine
            .stored_children(def, &self.run_id)
            .await
            .map_err(&store_error)?;
        for child in children {
            let journal = self
                .engine
                .store()
                .journal(&child.run_id)
                .await
                .map_err(&store_error)?;
            let steps = child.definition.steps;
            let events = stored_events(child.definition, &child.record, &journal);
            for event in self.new_events(&child.run_id, events) {
                let event = event.map_step(|i| steps.get(i as usize).map_or("?", |s| s.name));
                self.queue.push_back(RunEvent::Child {
                    step: child.step,
                    item: child.item,
                    event: Box::new(event),
                });
            }
        }
        let events = self.new_events(&parent, stored_events(def, &record, &journal));
        self.queue.extend(events);
        self.done = record.summary.status.is_finished();
        Ok(())
    }

    /// The events of run `run_id` beyond those queued before.
    fn new_events(
        &mut self,
        run_id: &RunId,
        events: Vec<RunEvent<StepIndex>>,
    ) -> Vec<RunEvent<StepIndex>> {
        let queued = self.queued.entry(run_id.clone()).or_default();
        let new = events.into_iter().skip(*queued).collect::<Vec<_>>();
        *queued += new.len();
        new
    }
}
