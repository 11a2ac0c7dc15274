//! [`EngineEvent`]: the events of every run an engine executes, as one stream
//! (`Engine::events`, `DurableEngine::events`), for dashboards and logs that watch many runs of
//! many workflows. Steps are named by their stable names; a run's own typed stream is
//! [`crate::RunHandle::events`].

use std::sync::Arc;

use futures::stream::BoxStream;
use tokio::sync::broadcast;

use crate::definition::{Definition, StepIndex};
use crate::events::RunEvent;
use crate::run_id::RunId;

/// Events an observer may fall behind by before it misses some (it is told how many).
const FEED_CAPACITY: usize = 4096;

/// One event of one run, on an engine's feed.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    /// An event of run `run_id` of `workflow`; its step is the step's name.
    Run {
        /// The workflow.
        workflow: &'static str,
        /// The run.
        run_id: RunId,
        /// What happened.
        event: RunEvent<&'static str>,
    },
    /// The observer fell behind and missed this many events.
    Missed(u64),
}

/// The sending side of an engine's feed. Costs nothing until someone subscribes: the channel
/// is made then (engines are made per run in places, and a channel is a 4,096-slot buffer).
#[derive(Default)]
pub(crate) struct EventFeed {
    sender: std::sync::OnceLock<broadcast::Sender<EngineEvent>>,
}

impl std::fmt::Debug for EventFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventFeed")
    }
}

impl EventFeed {
    /// True when someone watches.
    #[inline]
    pub fn watched(&self) -> bool {
        self.sender.get().is_some_and(|s| s.receiver_count() > 0)
    }

    /// Publishes an event of run `run_id` of the workflow defined by `def`.
    pub fn publish(&self, def: &'static Definition, run_id: &RunId, event: &RunEvent<StepIndex>) {
        if !self.watched() {
            return;
        }
        let named = event
            .clone()
            .map_step(|s| def.steps.get(s as usize).map_or("?", |d| d.name));
        let Some(sender) = self.sender.get() else {
            return;
        };
        let _ = sender.send(EngineEvent::Run {
            workflow: def.name,
            run_id: run_id.clone(),
            event: named,
        });
    }

    /// Sends the events of run `run_id` of `definition` to this feed while someone watches it
    /// (and the run has no event log of its own, which forwards to the feed already).
    pub fn tap(
        self: &Arc<Self>,
        options: &mut crate::options::RunOptions,
        definition: &'static Definition,
        run_id: &RunId,
    ) {
        if options.events.is_none() {
            options.events = self.tapped(definition, || run_id.clone());
        }
    }

    /// The event log that sends the events of run `run_id` of `definition` to this feed; none
    /// while nobody watches it (checked inline: every run asks).
    #[inline]
    pub fn tapped(
        self: &Arc<Self>,
        definition: &'static Definition,
        run_id: impl FnOnce() -> RunId,
    ) -> Option<Arc<crate::events::EventLog>> {
        if !self.watched() {
            return None;
        }
        Some(self.forwarding_log(definition, run_id()))
    }

    /// The event log of [`EventFeed::tapped`], for a watched feed.
    fn forwarding_log(
        self: &Arc<Self>,
        definition: &'static Definition,
        run_id: RunId,
    ) -> Arc<crate::events::EventLog> {
        Arc::new(crate::events::EventLog::forwarded(FeedTap {
            feed: self.clone(),
            definition,
            run_id,
        }))
    }

    /// Every event published from now on.
    pub fn subscribe(&self) -> BoxStream<'static, EngineEvent> {
        let receiver = self
            .sender
            .get_or_init(|| broadcast::channel(FEED_CAPACITY).0)
            .subscribe();
        Box::pin(futures::stream::unfold(
            receiver,
            |mut receiver| async move {
                match receiver.recv().await {
                    Ok(event) => Some((event, receiver)),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        Some((EngineEvent::Missed(missed), receiver))
                    }
                    Err(broadcast::error::RecvError::Closed) => None,
                }
            },
        ))
    }
}

/// Where a run's events go besides its own log: the engine's feed.
#[derive(Clone)]
pub(crate) struct FeedTap {
    pub feed: Arc<EventFeed>,
    pub definition: &'static Definition,
    pub run_id: RunId,
}
