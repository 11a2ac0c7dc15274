//! Runs of the in-memory engine started with a handle ([`crate::Engine::start`]): each run is
//! a task with a result slot, a cancel token and a signal mailbox; the engine finds a run by
//! id while any handle or its task holds it. Signals reach the scheduler through
//! [`MemoryJournal`], which journals nothing.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tokio::sync::Notify;

use crate::context::{RunInfo, RunLimits};
use crate::definition::StepIndex;
use crate::error::WorkflowError;
use crate::event_feed::{EventFeed, FeedTap};
use crate::events::{EventLog, RunEvent};
use crate::handle::{no_child_run, signal_step, RunBackend, RunHandle};
use crate::history::RunHistory;
use crate::journal::SignalPayload;
use crate::options::{CancellationToken, RunOptions};
use crate::run_id::RunId;
use crate::scheduler::{drive_durable, Drive, Driven, Recorder};
use crate::store::{RunStatus, StoreError};
use crate::workflow::Workflow;

mod mailbox;

pub(crate) use mailbox::{Mailbox, MemoryJournal};

type AnyRun = dyn Any + Send + Sync;

/// The runs of one in-memory engine that a handle can still reach.
#[derive(Default)]
pub(crate) struct MemoryRuns {
    runs: Mutex<HashMap<RunId, Weak<AnyRun>>>,
    /// Every run's events, for [`crate::Engine::events`].
    pub feed: Arc<EventFeed>,
}

impl std::fmt::Debug for MemoryRuns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryRuns")
    }
}

impl MemoryRuns {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, Weak<AnyRun>>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts `workflow` on `input` in a task of its own and returns its handle.
    pub fn start<W>(
        &self,
        workflow: &W,
        input: W::Input,
        options: RunOptions,
    ) -> Result<RunHandle<W>, WorkflowError>
    where
        W: Workflow + Clone + Send + Sync + 'static,
        W::Input: 'static,
        W::Output: 'static,
    {
        let def = W::definition();
        let run_id = options.run_id.clone().unwrap_or_else(RunId::generate);
        let cancel = options.cancel.clone().unwrap_or_default();
        let events = Arc::new(EventLog::kept(Some(FeedTap {
            feed: self.feed.clone(),
            definition: def,
            run_id: run_id.clone(),
        })));
        let mut options = options.cancel_token(cancel.clone());
        options.events = Some(events.clone());
        let info = Arc::new(RunInfo {
            workflow: def.name,
            id: run_id.clone().into(),
            engine: None,
            limits: RunLimits::of(&options),
            children: Default::default(),
            trace: Default::default(),
        });
        let run = Arc::new(MemoryRun::<W> {
            run_id: run_id.clone(),
            state: Mutex::new(State::Running),
            changed: Notify::new(),
            cancel,
            mailbox: Arc::new(Mailbox::default()),
            events,
            history: Mutex::new(None),
            info: info.clone(),
        });
        {
            let mut runs = self.lock();
            runs.retain(|_, run| run.strong_count() > 0);
            if runs.contains_key(&run_id) {
                return Err(WorkflowError::InputConflict {
                    workflow: def.name,
                    run_id,
                });
            }
            let any: Arc<AnyRun> = run.clone();
            runs.insert(run_id.clone(), Arc::downgrade(&any));
        }
        let task = run.clone();
        let workflow = workflow.clone();
        tokio::spawn(async move {
            let mut journal = MemoryJournal {
                mailbox: task.mailbox.clone(),
            };
            let mode = Drive {
                options: &options,
                journal: Some(&mut journal),
                replay: Vec::new(),
            };
            let mut recorder = Recorder::new(def);
            let driven = drive_durable(&workflow, input, info, mode, Some(&mut recorder)).await;
            let result = match driven {
                Driven::Finished(result) => result,
                // Nothing here parks or holds a lease.
                Driven::Park { .. } | Driven::Fenced { .. } => unreachable!("in memory"),
            };
            let mut history = recorder.into_history();
            if let Err(error) = &result {
                history.mark_failure(error);
            }
            *task.history.lock().unwrap_or_else(|p| p.into_inner()) = Some(history);
            task.finish(result);
        });
        Ok(RunHandle::new(run_id, run))
    }

    /// A handle on run `run_id` of `W`, if a handle or its task still holds it.
    pub fn handle<W>(&self, run_id: RunId) -> RunHandle<W>
    where
        W: Workflow + 'static,
        W::Output: 'static,
    {
        let found = self.lock().get(&run_id).and_then(Weak::upgrade);
        let backend: Arc<dyn RunBackend<W>> = match found {
            None => Arc::new(Missing::Unknown),
            Some(any) => match any.downcast::<MemoryRun<W>>() {
                Ok(run) => run,
                Err(_) => Arc::new(Missing::OtherWorkflow),
            },
        };
        RunHandle::new(run_id, backend)
    }
}

/// Where an in-memory run is.
enum State<O> {
    Running,
    /// Finished; `None` once a `wait` took the result.
    Finished(RunStatus, Option<Result<O, WorkflowError>>),
}

/// One in-memory run started with a handle.
struct MemoryRun<W: Workflow> {
    run_id: RunId,
    state: Mutex<State<W::Output>>,
    /// Woken when the run finishes.
    changed: Notify,
    cancel: CancellationToken,
    mailbox: Arc<Mailbox>,
    events: Arc<EventLog>,
    /// The run's history, once it finished.
    history: Mutex<Option<RunHistory>>,
    /// What its steps share, its children among them (their mailboxes).
    info: Arc<RunInfo>,
}

impl<W: Workflow> MemoryRun<W> {
    fn lock(&self) -> std::sync::MutexGuard<'_, State<W::Output>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn finish(&self, result: Result<W::Output, WorkflowError>) {
        let status = match &result {
            Ok(_) => RunStatus::Completed,
            Err(WorkflowError::Cancelled { .. }) => RunStatus::Cancelled,
            Err(_) => RunStatus::Failed,
        };
        *self.lock() = State::Finished(status, Some(result));
        *self
            .mailbox
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = false;
        self.changed.notify_waiters();
    }

    fn finished_status(&self) -> Option<RunStatus> {
        match &*self.lock() {
            State::Finished(status, _) => Some(*status),
            _ => None,
        }
    }

    fn unknown_signal_or_finished(&self, name: &'static str) -> Result<(), WorkflowError> {
        match self.finished_status() {
            Some(status) => Err(WorkflowError::Store {
                workflow: W::definition().name,
                run_id: self.run_id.clone(),
                error: StoreError::RunFinished {
                    run_id: self.run_id.clone(),
                    status,
                    signal: name.to_owned(),
                },
            }),
            None => Ok(()),
        }
    }
}

impl<W: Workflow + 'static> RunBackend<W> for MemoryRun<W>
where
    W::Output: 'static,
{
    fn wait<'a>(&'a self, _: &'a RunId) -> BoxFuture<'a, Result<W::Output, WorkflowError>> {
        Box::pin(async move {
            loop {
                let changed = self.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if let State::Finished(_, result) = &mut *self.lock() {
                    return result.take().unwrap_or_else(|| {
                        Err(WorkflowError::OutputTaken {
                            workflow: W::definition().name,
                            run_id: self.run_id.clone(),
                        })
                    });
                }
                changed.await;
            }
        })
    }

    fn status<'a>(&'a self, _: &'a RunId) -> BoxFuture<'a, Result<RunStatus, WorkflowError>> {
        let status = match &*self.lock() {
            State::Finished(status, _) => *status,
            State::Running if self.mailbox.is_waiting() => RunStatus::Waiting,
            State::Running => RunStatus::Claimed,
        };
        Box::pin(async move { Ok(status) })
    }

    fn cancel<'a>(&'a self, _: &'a RunId) -> BoxFuture<'a, Result<(), WorkflowError>> {
        self.cancel.cancel();
        Box::pin(async { Ok(()) })
    }

    fn signal<'a>(
        &'a self,
        _: &'a RunId,
        step: StepIndex,
        _value: Box<dyn Any + Send + Sync>,
        make: Arc<dyn Fn() -> Box<dyn Any + Send> + Send + Sync>,
    ) -> BoxFuture<'a, Result<(), WorkflowError>> {
        let name = W::definition().steps[step as usize]
            .signal
            .map_or("?", |s| s.name);
        let result = self
            .unknown_signal_or_finished(name)
            .map(|()| self.mailbox.push(name, SignalPayload::Value(make)));
        Box::pin(async move { result })
    }

    fn signal_child<'a>(
        &'a self,
        run_id: &'a RunId,
        step: StepIndex,
        child_step: StepIndex,
        _value: Box<dyn Any + Send + Sync>,
        make: Arc<dyn Fn() -> Box<dyn Any + Send> + Send + Sync>,
    ) -> BoxFuture<'a, Result<(), WorkflowError>> {
        let def = &W::definition().steps[step as usize];
        let child = def.child.map(|child| (child.definition)());
        let mailbox = self.info.children.mailbox(def.name, None);
        let result = match (child, mailbox) {
            (Some(child), Some(mailbox)) => {
                let name = child.steps[child_step as usize]
                    .signal
                    .map_or("?", |s| s.name);
                mailbox.push(name, SignalPayload::Value(make));
                Ok(())
            }
            (child, _) => Err(no_child_run::<W>(
                run_id,
                step,
                child.map_or("?", |c| c.name),
            )),
        };
        Box::pin(async move { result })
    }

    fn events(&self, _: &RunId) -> BoxStream<'static, RunEvent<W::Step>> {
        self.events.clone().stream::<W>()
    }

    fn history<'a>(&'a self, _: &'a RunId) -> BoxFuture<'a, Result<RunHistory, WorkflowError>> {
        let finished = self
            .history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let history = finished
            .unwrap_or_else(|| RunHistory::from_events(W::definition(), &self.events.snapshot()));
        Box::pin(async move { Ok(history) })
    }

    fn signal_json<'a>(
        &'a self,
        run_id: &'a RunId,
        name: &'a str,
        _: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<(), WorkflowError>> {
        let result = signal_step::<W>(run_id, name).and_then(|step| {
            let signal = W::definition().steps[step as usize]
                .signal
                .map_or("?", |s| s.name);
            self.unknown_signal_or_finished(signal)?;
            Err(WorkflowError::BadSignal {
                workflow: W::definition().name,
                run_id: run_id.clone(),
                signal,
                reason: "the in-memory engine takes typed signals only (RunHandle::signal)".into(),
            })
        });
        Box::pin(async move { result })
    }
}

/// A handle whose run this engine does not have.
enum Missing {
    Unknown,
    OtherWorkflow,
}

impl Missing {
    fn error<W: Workflow>(&self, run_id: &RunId) -> WorkflowError {
        let workflow = W::definition().name;
        match self {
            Missing::Unknown => WorkflowError::Store {
                workflow,
                run_id: run_id.clone(),
                error: StoreError::UnknownRun(run_id.clone()),
            },
            Missing::OtherWorkflow => WorkflowError::WrongWorkflow {
                workflow,
                run_id: run_id.clone(),
                found: "another workflow".into(),
            },
        }
    }
}

impl<W: Workflow> RunBackend<W> for Missing {
    fn wait<'a>(&'a self, run_id: &'a RunId) -> BoxFuture<'a, Result<W::Output, WorkflowError>> {
        let error = self.error::<W>(run_id);
        Box::pin(async move { Err(error) })
    }

    fn status<'a>(&'a self, run_id: &'a RunId) -> BoxFuture<'a, Result<RunStatus, WorkflowError>> {
        let error = self.error::<W>(run_id);
        Box::pin(async move { Err(error) })
    }

    fn cancel<'a>(&'a self, run_id: &'a RunId) -> BoxFuture<'a, Result<(), WorkflowError>> {
        let error = self.error::<W>(run_id);
        Box::pin(async move { Err(error) })
    }

    fn signal<'a>(
        &'a self,
        run_id: &'a RunId,
        _: StepIndex,
        _: Box<dyn Any + Send + Sync>,
        _: Arc<dyn Fn() -> Box<dyn Any + Send> + Send + Sync>,
    ) -> BoxFuture<'a, Result<(), WorkflowError>> {
        let error = self.error::<W>(run_id);
        Box::pin(async move { Err(error) })
    }

    fn signal_json<'a>(
        &'a self,
        run_id: &'a RunId,
        _: &'a str,
        _: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<(), WorkflowError>> {
        let error = self.error::<W>(run_id);
        Box::pin(async move { Err(error) })
    }

    fn signal_child<'a>(
        &'a self,
        run_id: &'a RunId,
        _: StepIndex,
        _: StepIndex,
        _: Box<dyn Any + Send + Sync>,
        _: Arc<dyn Fn() -> Box<dyn Any + Send> + Send + Sync>,
    ) -> BoxFuture<'a, Result<(), WorkflowError>> {
        let error = self.error::<W>(run_id);
        Box::pin(async move { Err(error) })
    }

    fn events(&self, _: &RunId) -> BoxStream<'static, RunEvent<W::Step>> {
        Box::pin(futures::stream::empty())
    }

    fn history<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<RunHistory, WorkflowError>> {
        let error = self.error::<W>(run_id);
        Box::pin(async move { Err(error) })
    }
}
