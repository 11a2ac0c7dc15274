//! [`RunEvent`]: what happens in a run, in order, with steps named by the workflow's generated
//! step enum (`ExpenseStep::Submit`), so renaming a step breaks an observer at compile time.
//!
//! In-memory runs started with a handle record every event as it happens ([`EventLog`]);
//! durable runs derive theirs from the journal (`durable::events`), so any process can follow
//! a run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::BoxStream;
use tokio::sync::Notify;

use crate::definition::StepIndex;
use crate::event_feed::FeedTap;
use crate::store::RunStatus;
use crate::workflow::Workflow;

/// One thing that happened in a run. `S` is the workflow's step enum ([`Workflow::Step`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RunEvent<S> {
    /// The run started (or resumed, on a durable engine).
    RunStarted,
    /// An attempt of a step (of one item, for `for_each`) started; attempts count from 1.
    StepStarted {
        /// The step.
        step: S,
        /// The `for_each` item.
        item: Option<usize>,
        /// The attempt.
        attempt: u32,
    },
    /// A step completed (for `for_each`: its last item did).
    StepCompleted {
        /// The step.
        step: S,
        /// Time from its first attempt's start, when this process saw it start.
        duration: Option<Duration>,
    },
    /// An attempt failed.
    StepFailed {
        /// The step.
        step: S,
        /// The `for_each` item.
        item: Option<usize>,
        /// The failed attempt.
        attempt: u32,
        /// What it failed with.
        error: String,
        /// True when the step will be tried again.
        will_retry: bool,
    },
    /// A step failed for good and its fallback (`on_failure = method`) runs; the fallback's
    /// output stands in for the step's.
    FellBack {
        /// The step.
        step: S,
        /// The `for_each` item.
        item: Option<usize>,
        /// The step's last error.
        error: String,
    },
    /// A step in flight was cancelled: it lost a `first(..)` race.
    StepCancelled {
        /// The step.
        step: S,
    },
    /// A step did not run: an untaken branch upstream, or the run ended first.
    StepSkipped {
        /// The step.
        step: S,
    },
    /// A step waits for a signal.
    WaitingForSignal {
        /// The step.
        step: S,
        /// The signal.
        signal: &'static str,
    },
    /// A step's signal arrived (`timed_out`: its deadline passed first).
    SignalReceived {
        /// The step.
        step: S,
        /// The signal.
        signal: &'static str,
        /// True when the deadline passed instead.
        timed_out: bool,
    },
    /// An item of a `for_each` step finished.
    ForEachProgress {
        /// The step.
        step: S,
        /// Items finished.
        done: usize,
        /// Items in all (unknown when read back from a journal).
        total: Option<usize>,
    },
    /// The run stopped early (a failed step, a cancel, a deadline) and compensates.
    Compensating {
        /// Why.
        cause: String,
    },
    /// A completed saga step was undone (`failed`: its compensation failed for good).
    Compensated {
        /// The saga step.
        step: S,
        /// True when the compensation failed.
        failed: bool,
    },
    /// Something happened in the child workflow run by step `step` (`workflow = Child`), with
    /// the child's steps named by their stable names.
    Child {
        /// The parent's step.
        step: S,
        /// The `for_each` item, for a child run per item.
        item: Option<usize>,
        /// The child's event.
        event: Box<RunEvent<&'static str>>,
    },
    /// The run finished.
    RunFinished {
        /// How: completed, failed or cancelled.
        status: RunStatus,
        /// The error, when it did not complete.
        error: Option<String>,
    },
}

impl<S> RunEvent<S> {
    /// The step this event is about, if any.
    pub fn step(&self) -> Option<&S> {
        match self {
            RunEvent::StepStarted { step, .. }
            | RunEvent::StepCompleted { step, .. }
            | RunEvent::StepFailed { step, .. }
            | RunEvent::FellBack { step, .. }
            | RunEvent::StepCancelled { step }
            | RunEvent::StepSkipped { step }
            | RunEvent::WaitingForSignal { step, .. }
            | RunEvent::SignalReceived { step, .. }
            | RunEvent::ForEachProgress { step, .. }
            | RunEvent::Compensated { step, .. }
            | RunEvent::Child { step, .. } => Some(step),
            RunEvent::RunStarted | RunEvent::Compensating { .. } | RunEvent::RunFinished { .. } => {
                None
            }
        }
    }

    /// The same event with its step mapped by `f`.
    pub fn map_step<T>(self, f: impl FnOnce(S) -> T) -> RunEvent<T> {
        match self {
            RunEvent::RunStarted => RunEvent::RunStarted,
            RunEvent::StepStarted {
                step,
                item,
                attempt,
            } => RunEvent::StepStarted {
                step: f(step),
                item,
                attempt,
            },
            RunEvent::StepCompleted { step, duration } => RunEvent::StepCompleted {
                step: f(step),
                duration,
            },
            RunEvent::StepFailed {
                step,
                item,
                attempt,
                error,
                will_retry,
            } => RunEvent::StepFailed {
                step: f(step),
                item,
                attempt,
                error,
                will_retry,
            },
            RunEvent::FellBack { step, item, error } => RunEvent::FellBack {
                step: f(step),
                item,
                error,
            },
            RunEvent::StepCancelled { step } => RunEvent::StepCancelled { step: f(step) },
            RunEvent::StepSkipped { step } => RunEvent::StepSkipped { step: f(step) },
            RunEvent::WaitingForSignal { step, signal } => RunEvent::WaitingForSignal {
                step: f(step),
                signal,
            },
            RunEvent::SignalReceived {
                step,
                signal,
                timed_out,
            } => RunEvent::SignalReceived {
                step: f(step),
                signal,
                timed_out,
            },
            RunEvent::ForEachProgress { step, done, total } => RunEvent::ForEachProgress {
                step: f(step),
                done,
                total,
            },
            RunEvent::Compensating { cause } => RunEvent::Compensating { cause },
            RunEvent::Compensated { step, failed } => RunEvent::Compensated {
                step: f(step),
                failed,
            },
            RunEvent::Child { step, item, event } => RunEvent::Child {
                step: f(step),
                item,
                event,
            },
            RunEvent::RunFinished { status, error } => RunEvent::RunFinished { status, error },
        }
    }
}

impl RunEvent<StepIndex> {
    /// The event with `W`'s step for its step index; `None` if the index is not a step of `W`.
    pub(crate) fn typed<W: Workflow>(self) -> Option<RunEvent<W::Step>> {
        let step = match self.step() {
            Some(&index) => Some(W::__step(index)?),
            None => None,
        };
        Some(self.map_step(|_| step.expect("an event with a step")))
    }
}

/// The events of one in-memory run, kept until the run's handles are gone, so a late
/// observer still sees them from the start.
pub(crate) struct EventLog {
    /// Kept for the run's handles; `None`: only forwarded to the engine's feed.
    events: Option<Mutex<Vec<RunEvent<StepIndex>>>>,
    /// The engine's feed, if anyone may watch it.
    tap: Option<FeedTap>,
    /// When each step (and item) first started, for durations.
    started: Mutex<HashMap<StepIndex, Instant>>,
    closed: AtomicBool,
    bell: Notify,
    /// For a child run's log: the parent's log, where its events go as [`RunEvent::Child`].
    relay: Option<Relay>,
}

/// Where a child run's events go: its parent step's run.
struct Relay {
    parent: Arc<EventLog>,
    step: StepIndex,
    item: Option<usize>,
    child: &'static crate::definition::Definition,
}

impl EventLog {
    /// A log kept for the run's handles, also forwarded to `tap`.
    pub fn kept(tap: Option<FeedTap>) -> Self {
        EventLog {
            events: Some(Mutex::default()),
            tap,
            started: Mutex::default(),
            closed: AtomicBool::new(false),
            bell: Notify::new(),
            relay: None,
        }
    }

    /// The log of a child run of step `step` (item `item`) of the run logging to `parent`:
    /// its events go to the parent's log, with the child's steps named.
    pub fn relayed(
        parent: Arc<EventLog>,
        step: StepIndex,
        item: Option<usize>,
        child: &'static crate::definition::Definition,
    ) -> Self {
        EventLog {
            events: None,
            relay: Some(Relay {
                parent,
                step,
                item,
                child,
            }),
            ..EventLog::kept(None)
        }
    }

    /// A log that only forwards to the engine's feed (a durable worker's runs, which their
    /// handles follow through the journal).
    pub fn forwarded(tap: FeedTap) -> Self {
        EventLog {
            events: None,
            ..EventLog::kept(Some(tap))
        }
    }

    pub fn push(&self, event: RunEvent<StepIndex>) {
        if let Some(tap) = &self.tap {
            tap.feed.publish(tap.definition, &tap.run_id, &event);
        }
        match &event {
            RunEvent::StepStarted { step, .. } => {
                let mut started = self.started.lock().unwrap_or_else(|p| p.into_inner());
                started.entry(*step).or_insert_with(Instant::now);
            }
            RunEvent::RunFinished { .. } => self.closed.store(true, Ordering::SeqCst),
            _ => {}
        }
        if let Some(relay) = &self.relay {
            let steps = relay.child.steps;
            let event = event.map_step(|step| steps.get(step as usize).map_or("?", |s| s.name));
            relay.parent.push(RunEvent::Child {
                step: relay.step,
                item: relay.item,
                event: Box::new(event),
            });
            return;
        }
        if let Some(events) = &self.events {
            events.lock().unwrap_or_else(|p| p.into_inner()).push(event);
        }
        self.bell.notify_waiters();
    }

    /// Every event so far.
    pub fn snapshot(&self) -> Vec<RunEvent<StepIndex>> {
        self.events.as_ref().map_or_else(Vec::new, |events| {
            events.lock().unwrap_or_else(|p| p.into_inner()).clone()
        })
    }

    fn get(&self, index: usize) -> Option<RunEvent<StepIndex>> {
        let events = self.events.as_ref()?;
        events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(index)
            .cloned()
    }

    /// Time since `step` first started here.
    pub fn since_start(&self, step: StepIndex) -> Option<Duration> {
        let started = self.started.lock().unwrap_or_else(|p| p.into_inner());
        started.get(&step).map(Instant::elapsed)
    }

    /// Every event of the run, from the first, until it finished.
    pub fn stream<W: Workflow>(self: Arc<Self>) -> BoxStream<'static, RunEvent<W::Step>> {
        Box::pin(futures::stream::unfold(
            (self, 0usize),
            |(log, mut next)| async move {
                loop {
                    let event = log.get(next);
                    if let Some(event) = event {
                        next += 1;
                        if let Some(typed) = event.typed::<W>() {
                            return Some((typed, (log, next)));
                        }
                        continue;
                    }
                    if log.closed.load(Ordering::SeqCst) {
                        return None;
                    }
                    let rung = log.bell.notified();
                    tokio::pin!(rung);
                    rung.as_mut().enable();
                    if log.get(next).is_none() && !log.closed.load(Ordering::SeqCst) {
                        rung.await;
                    }
                }
            },
        ))
    }
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventLog")
    }
}
