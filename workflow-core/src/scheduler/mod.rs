//! The eager scheduler: drives one run of a workflow to its end.
//!
//! Every step starts the moment its inputs are ready. All in-flight work of a run (step
//! attempts, `for_each` items, backoff pauses, signal waits) sits in one `FuturesUnordered`
//! polled by the run's task, so independent steps run concurrently without a task spawn per
//! step. Step outputs move through the generated per-run state; the scheduler only sees
//! indices. With a [`Journal`], each output is committed before it is handed downstream, and a
//! resumed run first replays its journal (see `replay.rs`).

mod commits;
mod emit;
mod fallback;
mod guard;
mod held;
mod in_flight;
mod race;
mod rare;
mod recorder;
mod replay;
mod signals;
mod stop;
mod straight;
mod trace;
mod tunables;
mod undo_child;
mod wakes;

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, SystemTime};

pub(crate) use held::{drive_held, Held};
pub(crate) use recorder::Recorder;
use stop::Stop;

use crate::context::RunInfo;
use crate::definition::{Definition, StepIndex};
use crate::error::{StepError, WorkflowError};
use crate::events::{EventLog, RunEvent};
use crate::journal::{Journal, Replay};
use crate::options::RunOptions;
use crate::report::FailureReport;
use crate::step_flow::Flows;
use crate::task::{Outcome, Tag, Task};
use crate::testing::{fault_future, TestPlan};
use crate::workflow::{StartInfo, Workflow};

/// A retry backoff at least this long parks a worker-driven durable run instead of holding it
/// in memory.
const PARK_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Waiting,
    Ready,
    /// Waiting for its signal.
    Signalled,
    Running,
    Done,
    Failed,
    /// Lost a `first(..)` race: dropped, never run again in this iteration.
    Cancelled,
}

/// Per-run bookkeeping of one step.
#[derive(Clone, Copy)]
struct StepState {
    status: Status,
    /// Upstream edges delivered in the current iteration.
    delivered: u16,
    /// Bumped when a loop iteration resets the step.
    generation: u32,
    /// Times the step was launched (a loop head's iteration count).
    launches: u32,
    attempts: u32,
    completions: u32,
    /// Outputs kept for compensation (a saga step's completions, or its `for_each` items).
    kept: u32,
}

impl StepState {
    const NEW: StepState = StepState {
        status: Status::Waiting,
        delivered: 0,
        generation: 0,
        launches: 0,
        attempts: 0,
        completions: 0,
        kept: 0,
    };
}

/// The item progress table of a run of `steps` steps, made when its first `for_each` begins.
#[cold]
fn items_table(steps: usize) -> Vec<ItemProgress> {
    vec![ItemProgress::default(); steps]
}

/// Per-run progress of one `for_each` step's items, beside [`StepState`] so that the table
/// every step touches stays small (24 bytes a step): a static fan-out of 1,000 steps reads
/// and writes it once per branch.
#[derive(Clone, Copy, Default)]
struct ItemProgress {
    total: usize,
    /// The next item to launch.
    next: usize,
    done: usize,
}

/// How a run is driven: options, and for durable runs the journal and what to replay.
pub(crate) struct Drive<'j, O> {
    /// Borrowed: each layer of a run's future that held its own copy made the future (moved,
    /// so copied, as the run starts) larger.
    pub options: &'j RunOptions,
    pub journal: Option<&'j mut (dyn Journal<O> + 'j)>,
    /// Journal records to replay first, with their positions.
    pub replay: Replay<O>,
}

/// How a drive ended: the run finished (or failed), or it was suspended with nothing written
/// after its last commit, to be continued by a later claim.
pub(crate) enum Driven<O> {
    Finished(Result<O, WorkflowError>),
    /// Only signal waits are left: park the run until `wake_at` or a signal.
    Park {
        wake_at: Option<SystemTime>,
        waiting_for: String,
    },
    /// The worker lost the run's lease: it stopped at once. `rejected`: the store refused a
    /// write (another worker owns the run); otherwise the worker fenced itself first.
    Fenced {
        rejected: bool,
    },
}

/// Runs `workflow` on `input` in memory to its end (see [`drive_durable`]).
pub(crate) async fn drive<W: Workflow + Sync>(
    workflow: &W,
    input: W::Input,
    run: Arc<RunInfo>,
    options: &RunOptions,
    recorder: Option<&mut Recorder>,
) -> Result<W::Output, WorkflowError> {
    // The driver owns the run's only other handle: no clone (two atomic operations) per run.
    let mut driver = Driver::new(workflow, input, run, options, None, recorder);
    match driver.drive(Vec::new(), options).await {
        Driven::Finished(result) => result,
        // Without a journal a run neither parks nor holds a lease.
        Driven::Park { .. } | Driven::Fenced { .. } => Err(WorkflowError::Store {
            workflow: W::definition().name,
            run_id: driver.run.run_id().clone(),
            error: crate::store::StoreError::Database(
                "internal error: an in-memory run was suspended".into(),
            ),
        }),
    }
}

/// Runs `workflow` on `input` to its end, or until it must be suspended. When the run stops
/// early (a step failed for good, a loop ran past its bound, cancellation, a deadline),
/// in-flight steps are dropped and the completed saga steps are compensated in reverse
/// completion order.
pub(crate) async fn drive_durable<'r, W: Workflow + Sync>(
    workflow: &W,
    input: W::Input,
    run: Arc<RunInfo>,
    mode: Drive<'r, W::__Out>,
    recorder: Option<&'r mut Recorder>,
) -> Driven<W::Output> {
    let Drive {
        options,
        journal,
        replay,
    } = mode;
    let mut driver = Driver::new(workflow, input, run, options, journal, recorder);
    driver.drive(replay, options).await
}

impl<W: Workflow + Sync> Driver<'_, '_, W> {
    /// Runs the graph (after `replay`) until it runs out of work or stops, compensating when it
    /// stops early; records the steps' outcomes, the run's end event and its span's end.
    async fn drive(&mut self, replay: Replay<W::__Out>, options: &RunOptions) -> Driven<W::Output> {
        let outcome = match self.start(replay, options) {
            Ok(resumed) => self.event_loop(options, resumed).await,
            Err(stop) => Err(stop),
        };
        let result = match outcome {
            Ok(()) => Driven::Finished(self.output()),
            Err(Stop::Park {
                wake_at,
                waiting_for,
            }) => Driven::Park {
                wake_at,
                waiting_for,
            },
            Err(Stop::Fenced) => Driven::Fenced { rejected: false },
            Err(Stop::Store(crate::store::StoreError::LeaseLost { .. })) => {
                Driven::Fenced { rejected: true }
            }
            Err(stop) if stop.leaves_run_as_is() => {
                Driven::Finished(Err(self.error(stop, FailureReport::default())))
            }
            // Boxed, as only a stopping run needs it: see `compensate_losers`.
            Err(stop) => match Box::pin(self.stop(stop)).await {
                Err(WorkflowError::Store {
                    error: crate::store::StoreError::LeaseLost { .. },
                    ..
                }) => Driven::Fenced { rejected: true },
                result => Driven::Finished(result),
            },
        };
        self.record_outcomes();
        self.emit_end(&result);
        self.trace_end(&result);
        result
    }
}

struct Driver<'a, 'r, W: Workflow> {
    workflow: &'a W,
    def: &'static Definition,
    /// The definition's compact per-step table, read on the hot paths instead of `def`.
    flows: &'static Flows,
    state: W::__State,
    steps: Vec<StepState>,
    /// Indexed by step; empty until a `for_each` step begins (see [`Driver::items_of`]).
    items: Vec<ItemProgress>,
    ready: Vec<StepIndex>,
    in_flight: in_flight::InFlight<'a, W::__Out>,
    /// Outputs whose journal records are being committed.
    commits: commits::Commits<W::__Out>,
    /// True when the run goes on while its outputs are committed: no signal steps, loops or
    /// races, whose order of events the journal must fix before anything else happens.
    overlaps_commits: bool,
    /// Completed saga steps, in completion order: (step, its completion number).
    sagas: Vec<(StepIndex, usize)>,
    /// Completed saga steps of branches that lost a `first(..)` race, to compensate now.
    lost_sagas: Vec<(StepIndex, usize)>,
    /// Signals, long retries, child undos, replayed items: made on first use.
    rare: Option<Box<rare::Rare>>,
    /// Mocks and faults of a test.
    plan: Option<Arc<TestPlan>>,
    /// Where events go, for a run started with a handle.
    events: Option<Arc<EventLog>>,
    /// The run's overrides of the steps' tunables, if any.
    tunables: Option<Vec<tunables::Tunables>>,
    run: Arc<RunInfo>,
    journal: Option<&'r mut (dyn Journal<W::__Out> + 'r)>,
    recorder: Option<&'r mut Recorder>,
    /// The run's OpenTelemetry spans (feature `otel`).
    spans: trace::Spans,
}

impl<'a, 'r, W: Workflow + Sync> Driver<'a, 'r, W> {
    fn new(
        workflow: &'a W,
        input: W::Input,
        run: Arc<RunInfo>,
        options: &RunOptions,
        journal: Option<&'r mut (dyn Journal<W::__Out> + 'r)>,
        recorder: Option<&'r mut Recorder>,
    ) -> Self {
        let def = W::definition();
        let flows = def.__flow.of(def);
        Driver {
            workflow,
            def,
            flows,
            state: W::__new_state(input),
            steps: vec![StepState::NEW; def.steps.len()],
            items: Vec::new(),
            // Sized once (the first push of a growing Vec costs more than the allocation).
            ready: Vec::with_capacity(flows.starts.len().max(4)),
            in_flight: in_flight::InFlight::new(!flows.races),
            commits: commits::Commits::new(),
            overlaps_commits: journal.is_some() && !flows.ordered,
            sagas: Vec::new(),
            lost_sagas: Vec::new(),
            rare: None,
            plan: options.plan.clone(),
            events: options.events.clone(),
            tunables: tunables::resolve(def, options),
            run,
            journal,
            recorder,
            spans: trace::Spans::default(),
        }
    }

    /// Starts the run and replays `replay`; true when it replayed anything (a resumed run).
    /// Not async, so the run's future keeps no room for what it reads.
    fn start(&mut self, replay: Replay<W::__Out>, options: &RunOptions) -> Result<bool, Stop> {
        self.trace_run(options.trace_parent.as_deref());
        self.emit(|| RunEvent::RunStarted);
        for &step in &self.flows.starts {
            self.mark_ready(step);
        }
        // What the journal restores happened before: no events for it.
        let events = self.events.take();
        let resumed = !replay.is_empty();
        let replayed = self.replay(replay);
        self.events = events;
        match replayed? {
            Some(cause) => Err(Stop::Resumed(cause)),
            None => Ok(resumed),
        }
    }
}

impl<'a, W: Workflow + Sync> Driver<'a, '_, W> {
    /// Runs the graph until it runs out of work (or stops); `resumed`: after a replay.
    async fn event_loop(&mut self, options: &RunOptions, resumed: bool) -> Result<(), Stop> {
        if let Some(passed) = options.deadline.filter(|d| d.is_zero()) {
            // Passed already (a durable run's stored deadline, while no worker ran it).
            return Err(Stop::Deadline(passed));
        }
        let mut guard = guard::guard(options);
        if resumed {
            self.resume_items();
        }
        // Lost branches decided while replaying the journal.
        if !self.lost_sagas.is_empty() {
            self.compensate_losers().await.map_err(Stop::Store)?;
        }
        let quiet = self.quiet(options);
        loop {
            if quiet && self.ready.len() == 1 {
                self.run_straight().await?;
            }
            // When exactly one attempt is runnable and nothing else is in flight, await it
            // directly: a chain of steps never pays for the `FuturesUnordered` node.
            let mut solo = None;
            while let Some(step) = self.ready.pop() {
                if self.needs_signal(step) {
                    // Boxed, like every rare path here: inline, each would make the future of
                    // every run larger (see `compensate_losers`).
                    Box::pin(self.wait_for_signal(step)).await?;
                } else {
                    let alone = solo.is_none()
                        && self.ready.is_empty()
                        && self.in_flight.is_empty()
                        && self.commits.is_empty();
                    if let Some(task) = self.launch(step, alone)? {
                        solo = Some(task);
                    }
                }
            }
            let event = match &mut guard {
                None => self.next_event(&mut solo).await,
                Some(guard) => {
                    let mut next = std::pin::pin!(self.next_event(&mut solo));
                    std::future::poll_fn(|cx| match guard.poll(cx) {
                        Poll::Ready(stop) => Poll::Ready(Err(stop)),
                        Poll::Pending => next.as_mut().poll(cx).map(Ok),
                    })
                    .await?
                }
            };
            let Some((tag, outcome)) = event else {
                return self.park().map_or(Ok(()), Err);
            };
            if tag.generation != self.steps[tag.step as usize].generation {
                continue; // a result of an abandoned loop iteration
            }
            if let Outcome::Attempted(result) = &outcome {
                self.spans.attempt_end(tag.attempt_id(), result.is_ok());
            }
            match outcome {
                Outcome::SignalReady(ready) => Box::pin(self.signal_ready(tag.step, ready)).await?,
                Outcome::Attempted(Ok(out)) => {
                    let item = self.item_of(tag);
                    if let Some(journal) = self.journal.as_deref_mut() {
                        match journal.record_output(tag.step, item, &out) {
                            Ok(None) => {}
                            Ok(Some(commit)) if self.overlaps_commits => {
                                self.commits.push(tag, out, commit);
                                continue;
                            }
                            Ok(Some(commit)) => commit.await.map_err(Stop::Store)?,
                            // The value itself cannot be stored: the step fails, for good.
                            Err(crate::store::StoreError::Unstorable(detail)) => {
                                let error = StepError::permanent(StepError::msg(detail));
                                self.failed(tag, error)?;
                                continue;
                            }
                            Err(error) => return Err(Stop::Store(error)),
                        }
                    }
                    self.committed(tag, out)?;
                }
                Outcome::Committed(Ok(out)) => self.committed(tag, out)?,
                Outcome::Committed(Err(error)) => return Err(Stop::Store(error)),
                Outcome::Attempted(Err(error)) => {
                    if !Box::pin(self.put_off_retry(tag, &error)).await? {
                        self.failed(tag, error)?;
                    }
                }
                Outcome::RetryDue => {
                    let task = self.attempt(tag.step, tag.item, tag.attempt + 1)?;
                    self.in_flight.push(task);
                }
            }
            if !self.lost_sagas.is_empty() {
                self.compensate_losers().await.map_err(Stop::Store)?;
            }
        }
    }

    /// The next finished unit of work: the solo attempt (polled in place), the next
    /// committed output, or the next one of `in_flight`; `None` when nothing is left.
    async fn next_event(
        &mut self,
        solo: &mut Option<Task<'a, W::__Out>>,
    ) -> Option<(Tag, Outcome<W::__Out>)> {
        if let Some(task) = solo {
            return Some(task.await);
        }
        if self.commits.is_empty() {
            return self.in_flight.next().await;
        }
        std::future::poll_fn(|cx| {
            if let Poll::Ready(Some((tag, committed))) = self.commits.poll_next(cx) {
                return Poll::Ready(Some((tag, Outcome::Committed(committed))));
            }
            if self.commits.full() {
                return Poll::Pending; // the oldest commit's waker wakes the run
            }
            match self.in_flight.poll_next(cx) {
                Poll::Ready(None) if !self.commits.is_empty() => Poll::Pending,
                polled => polled,
            }
        })
        .await
    }

    /// A step's output is ready (on a durable run: committed): hand it downstream. A test
    /// plan's crash after the step stops the run here, before the losers of a race it decided
    /// are compensated (at the end of the event's handling).
    #[inline]
    fn committed(&mut self, tag: Tag, out: W::__Out) -> Result<(), Stop> {
        self.succeeded(tag, out)?;
        let crash = self
            .plan
            .as_ref()
            .is_some_and(|p| p.crashes_after(tag.step));
        if crash && self.steps[tag.step as usize].status == Status::Done {
            return Err(Stop::Crash(tag.step));
        }
        Ok(())
    }

    /// Waits for the outputs still being committed and hands them to the state without
    /// starting anything: a run that stops compensates every saga step that completed.
    async fn deliver_committing(&mut self) -> Result<(), crate::store::StoreError> {
        while let Some((tag, committed)) = self.commits.next().await {
            let item = self.item_of(tag);
            // A run that overlaps its commits has no loops, the only way a delivery can fail.
            let _ = self.deliver(tag.step, item, committed?);
        }
        Ok(())
    }

    fn output(&mut self) -> Result<W::Output, WorkflowError> {
        W::__take_output(&mut self.state).ok_or_else(|| WorkflowError::NoOutput {
            workflow: self.def.name,
            run_id: self.run.run_id().clone(),
            steps: self
                .def
                .steps
                .iter()
                .filter(|s| s.is_output)
                .map(|s| s.name)
                .collect(),
        })
    }

    fn mark_ready(&mut self, step: StepIndex) {
        self.steps[step as usize].status = Status::Ready;
        self.ready.push(step);
    }

    /// A ready step starts running.
    fn mark_running(&mut self, step: StepIndex) {
        let st = &mut self.steps[step as usize];
        st.status = Status::Running;
        st.launches += 1;
        if let Some(rec) = self.recorder.as_deref_mut() {
            rec.started(step as usize);
        }
    }

    /// True for a ready signal step whose signal has not been consumed yet.
    fn needs_signal(&self, step: StepIndex) -> bool {
        let index = step as usize;
        self.flows.steps[index].signal
            && self.steps[index].status == Status::Ready
            && !self
                .rare()
                .is_some_and(|rare| rare.signals.contains_key(&step))
    }

    /// Starts a ready step: returns its attempt when it is to run `alone` (awaited in place),
    /// else puts it in flight itself, as it does a `for_each` step's items. Queued here, the
    /// attempt is not moved through the result: a static fan-out launches 1,000 of them.
    fn launch(&mut self, step: StepIndex, alone: bool) -> Result<Option<Task<'a, W::__Out>>, Stop> {
        let index = step as usize;
        if self.steps[index].status != Status::Ready {
            return Ok(None); // reset by a loop iteration after it became ready
        }
        self.mark_running(step);
        if !self.flows.steps[index].items {
            if alone {
                return self.first_attempt(step, 0);
            }
            self.queue_first_attempt(step, 0)?;
            return Ok(None);
        }
        let total = self.begin_items(step)?;
        let limit = self
            .concurrency(step)
            .map_or(total, |c| (c as usize).min(total));
        for _ in 0..limit {
            self.launch_next_item(step)?;
        }
        Ok(None)
    }

    /// Takes the items of `for_each` step `step` from its input; over an empty list the step
    /// completes at once (with no journal record of its own). Returns how many items it has.
    fn begin_items(&mut self, step: StepIndex) -> Result<usize, Stop> {
        let total = W::__for_each_begin(&mut self.state, step);
        *self.items_of(step) = ItemProgress {
            total,
            next: 0,
            done: 0,
        };
        if total == 0 {
            let arm = W::__for_each_finish(&mut self.state, step);
            self.complete(step, arm)?;
        }
        Ok(total)
    }

    /// Launches the next not yet finished item of a `for_each` step, if any is left.
    #[inline]
    fn launch_next_item(&mut self, step: StepIndex) -> Result<(), Stop> {
        loop {
            let progress = self.items_of(step);
            if progress.next >= progress.total {
                return Ok(());
            }
            let item = progress.next;
            progress.next += 1;
            let replayed = self
                .rare
                .as_deref()
                .and_then(|rare| rare.replayed_items.get(&step))
                .is_some_and(|done| done.contains(&item));
            if !replayed {
                return self.queue_first_attempt(step, item);
            }
        }
    }

    /// The progress of `for_each` step `step`'s items (the table is made on first use).
    #[inline]
    fn items_of(&mut self, step: StepIndex) -> &mut ItemProgress {
        if self.items.is_empty() {
            self.items = items_table(self.steps.len());
        }
        &mut self.items[step as usize]
    }

    /// Puts the first attempt of a launched step (or item) in flight (see [`first_attempt`]).
    /// Attempt 1 of a step without a signal is made where it is queued: moved through a
    /// `Result`, a task was copied twice more per branch of a fan-out, each copy a load stalled
    /// on the stores just made.
    ///
    /// [`first_attempt`]: Self::first_attempt
    #[inline]
    fn queue_first_attempt(&mut self, step: StepIndex, item: usize) -> Result<(), Stop> {
        let retries_put_off = self
            .rare
            .as_deref()
            .is_some_and(|rare| !rare.pending_retries.is_empty());
        if retries_put_off || self.flows.steps[step as usize].signal {
            if let Some(task) = self.first_attempt(step, item)? {
                self.in_flight.push(task);
            }
            return Ok(());
        }
        let task = self.attempt_with(step, item, 1, None);
        self.in_flight.push(task);
        Ok(())
    }

    /// The first attempt of a launched step (or item) in this drive: attempt 1, or the retry a
    /// previous drive put off, once it is due (parked again, on a parking engine).
    #[inline]
    fn first_attempt(
        &mut self,
        step: StepIndex,
        item: usize,
    ) -> Result<Option<Task<'a, W::__Out>>, Stop> {
        // Most runs never put a retry off: no key is hashed for them.
        let pending = match self.rare.as_deref_mut() {
            Some(rare) if !rare.pending_retries.is_empty() => {
                rare.pending_retries.remove(&(step, item))
            }
            _ => None,
        };
        let Some((attempt, due)) = pending else {
            return Ok(Some(self.attempt(step, item, 1)?));
        };
        let left = due.duration_since(SystemTime::now()).unwrap_or_default();
        if left.is_zero() {
            return Ok(Some(self.attempt(step, item, attempt)?));
        }
        if self.parks() {
            self.rare_mut().parked_retries.push((step, due));
            return Ok(None);
        }
        let tag = Tag {
            step,
            item,
            generation: self.steps[step as usize].generation,
            attempt: attempt - 1,
        };
        Ok(Some(Task::backoff(tag, left)))
    }

    /// True on an engine that parks runs instead of waiting in memory.
    fn parks(&self) -> bool {
        self.journal.as_deref().is_some_and(|j| j.parks_waits())
    }

    /// A failed attempt whose retry is due only after a long backoff: on a parking engine the
    /// retry is journaled and the run parked until it is due. False when not put off.
    async fn put_off_retry(&mut self, tag: Tag, error: &StepError) -> Result<bool, Stop> {
        let def = &self.def.steps[tag.step as usize];
        let policy = self.policy(tag.step);
        let retries = !error.is_permanent() && tag.attempt <= policy.retries;
        let pause = policy.backoff.pause(tag.attempt);
        if !retries || pause < PARK_BACKOFF || !self.parks() {
            return Ok(false);
        }
        let due = SystemTime::now() + pause;
        let event = crate::journal::JournalEvent::RetryScheduled {
            step: def.name.to_owned(),
            item: def.for_each.map(|_| tag.item as u64),
            attempt: tag.attempt + 1,
            due,
        };
        tracing::warn!(step = def.name, attempt = tag.attempt, %error, ?pause, "step attempt failed; retry parked");
        // After the outputs still committing: the journal keeps the order things happened in.
        self.commits.settle().await.map_err(Stop::Store)?;
        if let Some(journal) = self.journal.as_deref_mut() {
            journal.record(event).await.map_err(Stop::Store)?;
        }
        self.rare_mut().parked_retries.push((tag.step, due));
        self.emit_failed(tag, error, true);
        Ok(true)
    }

    /// Creates one attempt of a step (or of one item of a `for_each` step).
    fn attempt(
        &mut self,
        step: StepIndex,
        item: usize,
        attempt: u32,
    ) -> Result<Task<'a, W::__Out>, Stop> {
        let signal = self.signal_for(step)?;
        Ok(self.attempt_with(step, item, attempt, signal))
    }

    /// Creates one attempt of a step, given what its signal brought (`None` for other steps).
    #[inline]
    fn attempt_with(
        &mut self,
        step: StepIndex,
        item: usize,
        attempt: u32,
        signal: Option<Box<dyn std::any::Any + Send>>,
    ) -> Task<'a, W::__Out> {
        let item_of = self.flows.steps[step as usize].items.then_some(item);
        let (tag, future) = self.start_attempt(step, item, attempt, signal);
        let span = trace::step_span(self.def, tag.attempt_id());
        self.emit(|| RunEvent::StepStarted {
            step,
            item: item_of,
            attempt,
        });
        self.spans.attempt(self.def, tag.attempt_id());
        Task::attempt(tag, span, future, self.timeout(step))
    }

    /// Counts attempt `attempt` of `step` (item `item`) and calls the generated code to start
    /// it (or the test plan's fault in its place).
    fn start_attempt(
        &mut self,
        step: StepIndex,
        item: usize,
        attempt: u32,
        signal: Option<Box<dyn std::any::Any + Send>>,
    ) -> (Tag, crate::workflow::StepFuture<'a, W::__Out>) {
        let workflow: &'a W = self.workflow;
        let plan = self.plan.as_deref();
        let future = match plan.and_then(|plan| plan.fault_for(step, attempt)) {
            Some(fault) => fault_future(self.def.steps[step as usize].name, attempt, fault),
            None => {
                let info = StartInfo {
                    run: &self.run,
                    attempt,
                    pass: self.steps[step as usize].launches,
                    signal,
                    plan,
                    events: self.events.as_ref(),
                };
                workflow.__start(&mut self.state, step, item, info)
            }
        };
        let st = &mut self.steps[step as usize];
        st.attempts += 1;
        let tag = Tag {
            step,
            item,
            generation: st.generation,
            attempt,
        };
        (tag, future)
    }

    /// An attempt succeeded (and its output is committed, on a durable run).
    #[inline]
    fn succeeded(&mut self, tag: Tag, out: W::__Out) -> Result<(), Stop> {
        let item = self.item_of(tag);
        self.deliver(tag.step, item, out)?;
        if item.is_some() {
            self.launch_next_item(tag.step)?;
        }
        Ok(())
    }

    /// The item of `tag` for a `for_each` step; `None` for other steps.
    #[inline]
    fn item_of(&self, tag: Tag) -> Option<usize> {
        self.flows.steps[tag.step as usize]
            .items
            .then_some(tag.item)
    }

    /// An attempt failed: retry it per the step's policy, or stop the run.
    fn failed(&mut self, tag: Tag, error: crate::error::StepError) -> Result<(), Stop> {
        let is_fallback = tag.attempt == fallback::FALLBACK_ATTEMPT;
        let will_retry =
            !is_fallback && !error.is_permanent() && tag.attempt <= self.policy(tag.step).retries;
        if !is_fallback {
            self.emit_failed(tag, &error, will_retry);
        }
        if !will_retry && self.fall_back(tag, &error) {
            return Ok(());
        }
        // An `item_results` step hands the item's error on and goes on with its other items.
        if !will_retry && self.def.steps[tag.step as usize].for_each.is_some() {
            if let Some(out) = W::__item_failed(tag.step, tag.item, error.clone()) {
                let done: crate::workflow::StepFuture<'a, W::__Out> =
                    Box::pin(std::future::ready(Ok(out)));
                self.in_flight.push(Task::attempt(tag, None, done, None));
                return Ok(());
            }
        }
        let def = &self.def.steps[tag.step as usize];
        if will_retry {
            self.trace_retry(tag);
            let pause = self.policy(tag.step).backoff.pause(tag.attempt);
            tracing::warn!(step = def.name, attempt = tag.attempt, %error, ?pause, "step attempt failed; retrying");
            let task = if pause.is_zero() {
                self.attempt(tag.step, tag.item, tag.attempt + 1)?
            } else {
                Task::backoff(tag, pause)
            };
            self.in_flight.push(task);
            return Ok(());
        }
        let attempts = if is_fallback {
            self.steps[tag.step as usize].attempts
        } else {
            tag.attempt
        };
        self.steps[tag.step as usize].status = Status::Failed;
        tracing::error!(step = def.name, attempts, %error, "step failed");
        Err(Stop::StepFailed {
            step: tag.step,
            item: def.for_each.map(|_| tag.item),
            attempts,
            error,
        })
    }

    /// Hands a (live or replayed) output to the generated state; completes the step when it
    /// is done (for `for_each`: when its last item is).
    fn deliver(&mut self, step: StepIndex, item: Option<usize>, out: W::__Out) -> Result<(), Stop> {
        let arm = W::__deliver(&mut self.state, out);
        if !self.flows.steps[step as usize].items {
            return self.complete(step, arm);
        }
        if self.undoable(step, item) {
            self.keep_for_compensation(step, item);
        }
        let progress = self.items_of(step);
        progress.done += 1;
        let (done, total) = (progress.done, progress.total);
        self.emit(|| RunEvent::ForEachProgress {
            step,
            done,
            total: Some(total),
        });
        if done == total {
            let arm = W::__for_each_finish(&mut self.state, step);
            return self.complete(step, arm);
        }
        Ok(())
    }

    /// Notes that the generated state kept one more output of saga step `step` for its
    /// compensation (a completion, or a `for_each` item), to undo it if the run stops.
    fn keep_for_compensation(&mut self, step: StepIndex, item: Option<usize>) {
        let st = &mut self.steps[step as usize];
        let completion = st.kept as usize;
        self.sagas.push((step, completion));
        st.kept += 1;
        let def = &self.def.steps[step as usize];
        let undo = self.run.children.take_undo(def.name, item);
        // A replayed child step's undo is found again from its run id when needed.
        if undo.is_some() || def.child.is_some() {
            self.rare_mut()
                .child_undos
                .insert((step, completion), (item, undo));
        }
    }

    /// True when a completion of `step` (item `item`) is undone if the run stops: a saga step,
    /// a child workflow step, or a step whose body ran a child (`ctx.run_child`) that has saga
    /// steps of its own.
    fn undoable(&self, step: StepIndex, item: Option<usize>) -> bool {
        // `any_undo` first, though `has_undo` checks it too: the step's name is then read only
        // once some child left an undo (the definition is off the hot path).
        self.flows.steps[step as usize].undoable
            || (self.run.children.any_undo()
                && self
                    .run
                    .children
                    .has_undo(self.def.steps[step as usize].name, item))
    }

    /// A step produced its output (`arm`: the branch its downstream match selected).
    fn complete(&mut self, step: StepIndex, arm: Option<u16>) -> Result<(), Stop> {
        let st = &mut self.steps[step as usize];
        st.status = Status::Done;
        st.completions += 1;
        // A saga `for_each` step keeps (and compensates) each item instead.
        if !self.flows.steps[step as usize].items && self.undoable(step, None) {
            self.keep_for_compensation(step, None);
        }
        if let Some(rec) = self.recorder.as_deref_mut() {
            rec.completed(self.def, step as usize);
        }
        if let Some(events) = &self.events {
            let duration = events.since_start(step);
            events.push(RunEvent::StepCompleted { step, duration });
        }
        for edge in self.flows.downstream(step) {
            if edge.arm.is_some() && edge.arm != arm {
                continue; // an untaken branch
            }
            if edge.back {
                self.next_iteration(edge.to)?;
                continue;
            }
            let target = &mut self.steps[edge.to as usize];
            if target.status != Status::Waiting {
                continue; // an `any` join that already fired
            }
            target.delivered += 1;
            let target_flow = self.flows.steps[edge.to as usize];
            if target.delivered == target_flow.needs {
                self.mark_ready(edge.to);
                if target_flow.race {
                    self.cancel_losers(edge.to, step);
                }
            }
        }
        Ok(())
    }

    /// A back edge fired into loop head `head`: reset the loop's body and run the head again.
    /// Out of line: inlined, it made every completion's frame larger.
    #[cold]
    fn next_iteration(&mut self, head: StepIndex) -> Result<(), Stop> {
        let def = &self.def.steps[head as usize];
        let Some(loop_head) = def.loop_head else {
            return Ok(()); // the macro only emits back edges into loop heads
        };
        if self.steps[head as usize].launches >= loop_head.max_passes {
            return Err(Stop::LoopLimit {
                step: head,
                max_passes: loop_head.max_passes,
            });
        }
        let mut rare = self.rare.as_deref_mut();
        if let Some(rare) = rare.as_deref_mut() {
            rare.pending_retries
                .retain(|(step, _), _| !loop_head.body.contains(step) && *step != head);
        }
        for &member in loop_head.body {
            let st = &mut self.steps[member as usize];
            st.status = Status::Waiting;
            st.delivered = 0;
            st.generation += 1;
            if let Some(rare) = rare.as_deref_mut() {
                rare.signals.remove(&member);
                rare.wait_started.remove(&member);
                rare.replayed_items.remove(&member);
            }
            W::__reset(&mut self.state, member);
        }
        self.steps[head as usize].generation += 1;
        if let Some(rare) = rare {
            rare.signals.remove(&head);
            rare.wait_started.remove(&head);
        }
        self.mark_ready(head);
        Ok(())
    }
}
